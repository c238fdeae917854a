"""Live, read-only Kubernetes collection through a kubeconfig. Docker: docker_live.py; TCP probes: probe.py."""

from __future__ import annotations

import json
from typing import Any

from ...k8s import WORKLOAD_KINDS
from .inputs import COVERAGE_KIND, Inputs, Obj, flatten


class LiveError(Exception):
    pass


# ---------------------------------------------------------------- Kubernetes

# (client API class, list method, kind, group/version, resource). Every call is a cluster-wide list (GET).
K8S_LISTS = (
    ("RbacAuthorizationV1Api", "list_cluster_role", "ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles"),
    ("RbacAuthorizationV1Api", "list_cluster_role_binding", "ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("RbacAuthorizationV1Api", "list_role_for_all_namespaces", "Role", "rbac.authorization.k8s.io/v1", "roles"),
    ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces", "RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
    ("CoreV1Api", "list_pod_for_all_namespaces", "Pod", "v1", "pods"),
    ("CoreV1Api", "list_node", "Node", "v1", "nodes"),
    ("CoreV1Api", "list_service_account_for_all_namespaces", "ServiceAccount", "v1", "serviceaccounts"),
    ("CoreV1Api", "list_replication_controller_for_all_namespaces", "ReplicationController", "v1", "replicationcontrollers"),
    ("AppsV1Api", "list_deployment_for_all_namespaces", "Deployment", "apps/v1", "deployments"),
    ("AppsV1Api", "list_stateful_set_for_all_namespaces", "StatefulSet", "apps/v1", "statefulsets"),
    ("AppsV1Api", "list_daemon_set_for_all_namespaces", "DaemonSet", "apps/v1", "daemonsets"),
    ("AppsV1Api", "list_replica_set_for_all_namespaces", "ReplicaSet", "apps/v1", "replicasets"),
    ("BatchV1Api", "list_job_for_all_namespaces", "Job", "batch/v1", "jobs"),
    ("BatchV1Api", "list_cron_job_for_all_namespaces", "CronJob", "batch/v1", "cronjobs"),
)
PAGE = 500  # list in chunks (limit/continue) so a large cluster is not one huge response

# What a missing list leaves unevaluated (shown in the coverage finding).
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")



def kube_client(kubeconfig: str, context: str | None = None) -> Any:
    """An ApiClient for this kubeconfig (no request is made)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the client raises ConfigException, OSError, yaml errors ...
        raise LiveError(f"{kubeconfig}: {exc}") from None


def _affects(kind: str) -> str:
    if kind in RBAC_KINDS:
        return "who-can-exec (EG-RBAC-*) may be incomplete"
    if kind == "ServiceAccount":
        return "automountServiceAccountToken of service accounts unknown: EG-RBAC-020 assumes tokens are mounted"
    if kind in WORKLOAD_KINDS:
        return f"{kind} pod templates not evaluated (EG-WL-*, EG-RBAC-020)"
    return f"{kind} not evaluated"


def _status_message(exc: Any) -> str:
    """The message of the metav1.Status body the API server sends with an error."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except (TypeError, ValueError):
        pass
    return str(exc.reason or exc.status)


def _list_all(method: Any) -> list[dict[str, Any]]:
    """Every page of one list call, as the raw JSON the API server sent (no client model round trip, so
    the objects are exactly what `kubectl get -o json` gives and fields the client does not know survive)."""
    pages: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "_preload_content": False, "_request_timeout": 10}
        if token:
            kwargs["_continue"] = token
        resp = method(**kwargs)
        try:
            page = json.loads(resp.data)
        finally:
            resp.release_conn()
        if not isinstance(page, dict):
            raise ValueError("list response is not a JSON object")
        pages.append(page)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return pages


def kube_inputs(api_client: Any) -> Inputs:
    """List RBAC objects, pods, nodes, service accounts and pod controllers (read-only) into the same Inputs
    an offline dump gives. A list the credentials may not read (403) or the server does not serve (404) is
    skipped and reported as incomplete coverage; any other failure aborts (LiveError)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    inputs = Inputs()
    source = f"kube-api:{api_client.configuration.host}"
    gaps: list[dict[str, Any]] = []
    for api_name, method, kind, group_version, resource in K8S_LISTS:
        api = getattr(client, api_name)(api_client)
        try:
            pages = _list_all(getattr(api, method))
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise LiveError(f"{source}: {method}: {exc.status} {_status_message(exc)}") from None
            reason = "forbidden" if exc.status == 403 else "not served"
            gaps.append(
                {
                    "kind": kind,
                    "list": f"{group_version} {resource}",
                    "status": exc.status,
                    "reason": reason,
                    "message": _status_message(exc),
                    "affects": _affects(kind),
                }
            )
            inputs.warnings.append(f"{source}: list {group_version} {resource}: {exc.status} {reason}; {_affects(kind)}")
            continue
        except Exception as exc:
            raise LiveError(f"{source}: {method}: {exc}") from None
        for page in pages:
            page["kind"] = f"{kind}List"  # items arrive without kind; flatten fills it in from the list kind
            inputs.objects.extend(flatten(page, source, None))
    if gaps:
        inputs.objects.append(Obj({"kind": COVERAGE_KIND, "metadata": {"name": source}, "gaps": gaps}, source))
    try:  # the version decides whether get alone on pods/exec can exec (collect/version.py); optional
        answer = client.VersionApi(api_client).get_code(_request_timeout=10)
        inputs.objects.append(Obj(server_version_object(api_client.sanitize_for_serialization(answer), source), source))
    except Exception as exc:  # an old or locked-down /version must not cost the audit
        inputs.warnings.append(f"{source}: GET /version: {str(exc)[:120]}; exec via get judged for any version")
    return inputs


def server_version_object(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A /version answer as an input object (kind ServerVersion, read by kube.apiserver_version)."""
    return {"kind": "ServerVersion", "gitVersion": data.get("gitVersion") or data.get("git_version"), "source": source}
