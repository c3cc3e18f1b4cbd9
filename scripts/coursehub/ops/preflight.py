"""`make deploy`'s pre-flight, before `helm upgrade`: the right cluster, permission, and a plan.

- The current kube context must be the course's `deploy.kubeContext` (a value
  in the course's file), and Helm is given that context explicitly.
- The kube user may update the release's objects (a SelfSubjectAccessReview).
- The plan says whether the hub will restart (its pod template differs from
  the running one: z2jh restarts it when Secret/hub or its ConfigMap change)
  and, with HUB_URL and a token, how many servers are running.
- `helm upgrade` rolls back on failure and waits (`--atomic --wait --timeout`,
  Helm 4: `--rollback-on-failure --wait=watcher`).
Cluster calls use the official `kubernetes` client. Every failure is one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import requests
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from coursehub import tools
from coursehub.chart.helm import Helm, Release
from coursehub.courses import Course, dotted, get
from coursehub.errors import CoursehubError, Problem

CONTEXT = ("deploy", "kubeContext")
TIMEOUT = ("deploy", "timeout")
# What a deploy changes: every kind must be allowed to the kube user in the release's namespace.
NEEDED = (("", "secrets", "update"), ("", "configmaps", "update"), ("apps", "deployments", "update"))
REQUEST_TIMEOUT = 15


@dataclass
class Plan:
    context: str
    hub_restarts: bool | None = None  # None: no hub yet (a first install)
    running_servers: int | None = None  # None: not asked (no HUB_URL or token)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"kube context: {self.context}"]
        if self.hub_restarts is None:
            out.append("the hub: new (first install)")
        else:
            out.append("the hub: restarts (its configuration changed)" if self.hub_restarts else "the hub: no restart")
        if self.running_servers is not None:
            out.append(f"running servers: {self.running_servers} (a hub restart leaves them running)")
        return out + self.notes


def safety_flags(helm: Helm, course: Course) -> list[str]:
    """Roll back a failed upgrade and wait for the release to be ready, in each Helm's spelling."""
    timeout = str(get(course.values(), TIMEOUT) or "10m")
    if _major(helm) >= 4:
        return ["--rollback-on-failure", "--wait=watcher", "--timeout", timeout]
    return ["--atomic", "--wait", "--timeout", timeout]


def _major(helm: Helm) -> int:
    for pin in tools.HELM_PINS.values():
        if helm.binary == pin.installed:
            return pin.major
    version = tools._version_of(helm.binary) or "v3"
    return int(version.lstrip("v").split(".")[0])


def kubeconfig() -> str | None:
    """$KUBECONFIG as it is now (the kubernetes client reads it only once, at import)."""
    return os.environ.get("KUBECONFIG") or None


def wanted_context(course: Course) -> str | None:
    return get(course.values(), CONTEXT) or None


def check_context(course: Course) -> str:
    """The course's kube context, when it is the current one; else one line saying what to do."""
    wanted = wanted_context(course)
    if not wanted:
        raise CoursehubError(
            Problem(
                course.origin(CONTEXT),
                dotted(CONTEXT),
                "is not set, so make deploy cannot tell this course's cluster from another",
                "set it to the course's kube context (kubectl config get-contexts)",
            )
        )
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig())
    except (ConfigException, OSError) as e:
        raise CoursehubError(
            Problem(
                os.environ.get("KUBECONFIG", "~/.kube/config"),
                "",
                f"no cluster is configured ({str(e).splitlines()[0]})",
                "set KUBECONFIG to the course cluster's kubeconfig",
            )
        ) from None
    current = (active or {}).get("name")
    if current != wanted:
        raise CoursehubError(
            Problem(
                course.origin(CONTEXT),
                dotted(CONTEXT),
                f"is {wanted!r}, but the current kube context is {current!r}",
                f"`kubectl config use-context {wanted}`, or correct the value",
            )
        )
    return wanted


def _cluster_error(e: Exception, context: str, what: str) -> CoursehubError:
    if isinstance(e, ApiException) and e.status in (401, 403):
        return CoursehubError(
            Problem(
                f"kube context {context}", "", f"has no permission to {what} ({e.status})", "use a context that has"
            )
        )
    reason = f"{e.status} {e.reason}" if isinstance(e, ApiException) else type(e).__name__
    return CoursehubError(
        Problem(f"kube context {context}", "", f"the cluster does not answer ({reason})", "check the cluster and VPN")
    )


def preflight(course: Course, release: Release, rendered: list[dict[str, Any]], hub_url: str | None = None) -> Plan:
    context = check_context(course)
    api = config.new_client_from_config(config_file=kubeconfig(), context=context)
    plan = Plan(context)
    try:
        review = client.AuthorizationV1Api(api)
        for group, resource, verb in NEEDED:
            attributes = client.V1ResourceAttributes(
                namespace=release.namespace, group=group, resource=resource, verb=verb
            )
            body = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
            )
            result = review.create_self_subject_access_review(body, _request_timeout=REQUEST_TIMEOUT)
            if not (result.status and result.status.allowed):
                raise CoursehubError(
                    Problem(
                        f"kube context {context}",
                        "",
                        f"may not {verb} {resource} in namespace {release.namespace}",
                        "use a context with permission to deploy the course",
                    )
                )
        plan.hub_restarts = _hub_restarts(client.AppsV1Api(api), release.namespace, rendered)
    except (ApiException, HTTPError) as e:
        raise _cluster_error(e, context, f"read the release in namespace {release.namespace}") from None
    if hub_url:
        plan.running_servers = running_servers(hub_url)
    return plan


def _hub_restarts(apps: client.AppsV1Api, namespace: str, rendered: list[dict[str, Any]]) -> bool | None:
    """Whether the hub's pod template (its config checksums, image, hub-Python hash) changes."""
    try:
        live = apps.read_namespaced_deployment("hub", namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    new = next((o for o in rendered if o.get("kind") == "Deployment" and get(o, ("metadata", "name")) == "hub"), None)
    if new is None:
        return True
    template = apps.api_client.sanitize_for_serialization(live.spec.template)
    return _pod_identity(template) != _pod_identity(get(new, ("spec", "template")) or {})


def _pod_identity(template: dict[str, Any]) -> tuple[Any, ...]:
    annotations = get(template, ("metadata", "annotations")) or {}
    images = tuple(c.get("image") for c in get(template, ("spec", "containers")) or [])
    return tuple(sorted(annotations.items())), images


def running_servers(hub_url: str) -> int | None:
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        return None
    try:
        r = requests.get(
            hub_url.rstrip("/") + "/hub/api/users",
            params={"state": "active", "limit": 1},
            headers={"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"},
            timeout=REQUEST_TIMEOUT,
        )
        r.raise_for_status()
        return int(r.json()["_pagination"]["total"])
    except (requests.RequestException, KeyError, ValueError) as e:
        raise CoursehubError(
            Problem(
                f"hub {hub_url}",
                "users?state=active",
                f"cannot be read ({type(e).__name__})",
                "check HUB_URL and the token",
            )
        ) from None
