"""Live inputs of `execguard watch`: each follows one source and hands Events to an emit callback."""
