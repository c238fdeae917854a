#!/bin/sh
# Written for execguard audit tests: flags override the config file.
exec /usr/local/bin/kubelet --config /etc/kubernetes/kubelet-config.yaml --anonymous-auth --read-only-port=10255
