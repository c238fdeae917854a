"""execguard audit: T1609 exposure checks over RBAC, kubelet, API server, audit policy, Docker and workloads."""
