"""Live, read-only Kubernetes collection through a kubeconfig. Docker: docker_live.py; TCP probes: probe.py."""

from __future__ import annotations

from typing import Any

from .inputs import Inputs, flatten


class LiveError(Exception):
    pass


# ---------------------------------------------------------------- Kubernetes

K8S_LISTS = (
    ("RbacAuthorizationV1Api", "list_cluster_role", "ClusterRole"),
    ("RbacAuthorizationV1Api", "list_cluster_role_binding", "ClusterRoleBinding"),
    ("RbacAuthorizationV1Api", "list_role_for_all_namespaces", "Role"),
    ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces", "RoleBinding"),
    ("CoreV1Api", "list_pod_for_all_namespaces", "Pod"),
    ("CoreV1Api", "list_node", "Node"),
)


def kube_client(kubeconfig: str, context: str | None = None) -> Any:
    """An ApiClient for this kubeconfig (no request is made)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the client raises ConfigException, OSError, yaml errors ...
        raise LiveError(f"{kubeconfig}: {exc}") from None


def kube_inputs(api_client: Any) -> Inputs:
    """List RBAC objects, pods and nodes (read-only) into the same Inputs an offline dump gives."""
    from kubernetes import client

    inputs = Inputs()
    source = f"kube-api:{api_client.configuration.host}"
    for api_name, method, kind in K8S_LISTS:
        api = getattr(client, api_name)(api_client)
        try:
            result = getattr(api, method)(_request_timeout=10)
        except Exception as exc:
            raise LiveError(f"{source}: {method}: {exc}") from None
        data = api_client.sanitize_for_serialization(result)  # wire format (camelCase)
        data["kind"] = f"{kind}List"
        inputs.objects.extend(flatten(data, source, None))
    return inputs
