"""A small, offline kustomize renderer for the tests: enough of `kustomize build` for our tree.

It supports `resources` (files and directories holding a kustomization), `namespace`,
`images` and `patches` (strategic merge, one document per entry, and JSON 6902). Anything else
in a kustomization is refused rather than ignored, so that the tests never validate something
other than what `kubectl apply -k` would send. Transformers run in kustomize's order: patches,
then namespace, then images.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "metadata", "resources", "namespace", "images", "patches"}
)
SUPPORTED_PATCH_FIELDS = frozenset({"path", "patch", "target"})
SUPPORTED_TARGET_FIELDS = frozenset({"group", "version", "kind", "name", "namespace"})
SUPPORTED_IMAGE_FIELDS = frozenset({"name", "newName", "newTag", "digest"})

# Kinds without a namespace; kustomize renames a Namespace object to the overlay's namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "CustomResourceDefinition",
        "IngressClass",
        "PriorityClass",
    }
)

# Strategic-merge keys of the Kubernetes lists we might patch; other lists are replaced whole,
# as in the API's own strategic merge for lists without a merge key.
MERGE_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "ports": ("containerPort", "port"),
}


class KustomizeError(Exception):
    """The tree uses something this renderer does not support, or is inconsistent."""


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document in ``path``; each must be a Kubernetes object."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in documents:
        if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= doc.keys():
            raise KustomizeError(f"{path}: every document needs apiVersion, kind and metadata")
    return documents


def find_kustomization(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise KustomizeError(f"{directory} has no kustomization file")


def render(directory: Path) -> list[Resource]:
    """The objects `kustomize build directory` would print, in resource order."""
    kustomization_path = find_kustomization(directory)
    kustomization = yaml.safe_load(kustomization_path.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(
            f"{kustomization_path}: the test renderer does not support "
            f"{', '.join(sorted(unsupported))}"
        )
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{kustomization_path}: kind must be Kustomization")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            resources.extend(load_documents(path))
        else:
            raise KustomizeError(f"{kustomization_path}: resource {entry!r} does not exist")
    _check_unique(resources, kustomization_path)

    for patch in kustomization.get("patches", []):
        _apply_patch(resources, patch, directory)
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            _set_namespace(resource, namespace)
    for image in kustomization.get("images", []):
        _set_image(resources, image, kustomization_path)
    return resources


def resource_id(resource: Resource) -> tuple[str, str, str, str]:
    metadata = resource.get("metadata") or {}
    return (
        resource["apiVersion"],
        resource["kind"],
        metadata.get("namespace", ""),
        metadata.get("name", ""),
    )


def _check_unique(resources: list[Resource], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        rid = resource_id(resource)
        if rid in seen:
            raise KustomizeError(f"{where}: {rid} is defined twice")
        seen.add(rid)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    group, version = _group_version(resource["apiVersion"])
    metadata = resource.get("metadata") or {}
    checks = {
        "group": group,
        "version": version,
        "kind": resource["kind"],
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
    }
    # kustomize treats each selector field as a regular expression matched in full.
    return all(re.fullmatch(str(target[key]), checks[key]) for key in target)


def _apply_patch(resources: list[Resource], entry: dict[str, Any], directory: Path) -> None:
    unsupported = set(entry) - SUPPORTED_PATCH_FIELDS
    if unsupported:
        raise KustomizeError(f"patch fields not supported: {', '.join(sorted(unsupported))}")
    if ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"a patch needs exactly one of path and patch: {entry}")
    text = (directory / entry["path"]).read_text() if "path" in entry else entry["patch"]
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    if len(documents) != 1:
        raise KustomizeError(f"a patch holds exactly one document, not {len(documents)}: {entry}")
    body = documents[0]
    target = entry.get("target")
    if target is not None:
        unsupported = set(target) - SUPPORTED_TARGET_FIELDS
        if unsupported:
            raise KustomizeError(f"target fields not supported: {', '.join(sorted(unsupported))}")

    if isinstance(body, list):
        if target is None:
            raise KustomizeError(f"a JSON 6902 patch needs a target: {entry}")
        selected = [i for i, r in enumerate(resources) if _matches(r, target)]
        if not selected:
            raise KustomizeError(f"patch target {target} matches nothing")
        for index in selected:
            resources[index] = apply_json6902(resources[index], body)
        return

    if not isinstance(body, dict):
        raise KustomizeError(f"a patch is a mapping or a list of operations: {entry}")
    if target is None:
        group, version = _group_version(str(body.get("apiVersion", "")))
        target = {
            "group": re.escape(group),
            "version": re.escape(version),
            "kind": re.escape(str(body.get("kind", ""))),
            "name": re.escape(str((body.get("metadata") or {}).get("name", ""))),
        }
    selected = [i for i, r in enumerate(resources) if _matches(r, target)]
    if not selected:
        raise KustomizeError(f"strategic-merge patch {target} matches nothing")
    for index in selected:
        patch = copy.deepcopy(body)
        # The patch's identity selects the object; it does not rename it.
        patch.pop("apiVersion", None)
        patch.pop("kind", None)
        metadata = patch.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("name", None)
            metadata.pop("namespace", None)
        resources[index] = strategic_merge(resources[index], patch)


def strategic_merge(original: Any, patch: Any, key: str = "") -> Any:
    """Kubernetes strategic merge, limited to maps, null deletion and keyed lists."""
    if isinstance(patch, dict):
        directives = [k for k in patch if k.startswith("$")]
        if directives:
            raise KustomizeError(f"strategic-merge directives not supported: {directives}")
        if not isinstance(original, dict):
            return copy.deepcopy(patch)
        merged = copy.deepcopy(original)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = strategic_merge(merged.get(name), value, name)
        return merged
    if isinstance(patch, list) and isinstance(original, list) and key in MERGE_KEYS:
        return _merge_keyed_list(original, patch, MERGE_KEYS[key])
    return copy.deepcopy(patch)


def _merge_keyed_list(original: list[Any], patch: list[Any], keys: tuple[str, ...]) -> list[Any]:
    merged = copy.deepcopy(original)
    for item in patch:
        key = next((k for k in keys if isinstance(item, dict) and k in item), None)
        if key is None:
            raise KustomizeError(f"list item {item} has none of the merge keys {keys}")
        for index, existing in enumerate(merged):
            if isinstance(existing, dict) and existing.get(key) == item[key]:
                merged[index] = strategic_merge(existing, item)
                break
        else:
            merged.append(copy.deepcopy(item))
    return merged


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _child(container: Any, token: str, path: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise KustomizeError(f"JSON patch path {path} does not exist")
        return container[token]
    if isinstance(container, list):
        index = int(token)
        if not 0 <= index < len(container):
            raise KustomizeError(f"JSON patch path {path} is out of range")
        return container[index]
    raise KustomizeError(f"JSON patch path {path} goes through a scalar")


def apply_json6902(resource: Resource, operations: list[Any]) -> Resource:
    """RFC 6902 add, remove, replace and test."""
    result = copy.deepcopy(resource)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        tokens = _pointer(path)
        parent: Any = result
        for token in tokens[:-1]:
            parent = _child(parent, token, path)
        last = tokens[-1]
        if op == "test":
            if _child(parent, last, path) != operation.get("value"):
                raise KustomizeError(f"JSON patch test failed at {path}")
        elif op == "remove":
            _child(parent, last, path)
            del parent[int(last) if isinstance(parent, list) else last]
        elif op == "replace":
            _child(parent, last, path)
            parent[int(last) if isinstance(parent, list) else last] = operation["value"]
        elif op == "add":
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), value)
            elif isinstance(parent, dict):
                parent[last] = value
            else:
                raise KustomizeError(f"JSON patch path {path} goes through a scalar")
        else:
            raise KustomizeError(f"JSON patch op {op!r} not supported")
    return result


def _set_namespace(resource: Resource, namespace: str) -> None:
    metadata = resource.setdefault("metadata", {})
    if resource["kind"] == "Namespace":
        metadata["name"] = namespace
    elif resource["kind"] not in CLUSTER_SCOPED_KINDS:
        metadata["namespace"] = namespace


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/name:tag@sha256:…`` -> (name with registry, tag, digest)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _containers(node: Any) -> list[dict[str, Any]]:
    """Every container in any pod spec or pod template inside ``node``."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(c for c in value if isinstance(c, dict))
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found


def _set_image(resources: list[Resource], entry: dict[str, Any], where: Path) -> None:
    unsupported = set(entry) - SUPPORTED_IMAGE_FIELDS
    if unsupported:
        raise KustomizeError(f"{where}: image fields not supported: {sorted(unsupported)}")
    matched = False
    for resource in resources:
        for container in _containers(resource):
            name, tag, digest = split_image(str(container.get("image", "")))
            if name != entry["name"]:
                continue
            matched = True
            name = entry.get("newName", name)
            if "newTag" in entry:
                tag, digest = str(entry["newTag"]), None
            if "digest" in entry:
                tag, digest = None, str(entry["digest"])
            image = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            container["image"] = image
    if not matched:
        # kustomize would silently do nothing; a typo here would ship the wrong image.
        raise KustomizeError(f"{where}: images entry {entry['name']!r} matches no container")
