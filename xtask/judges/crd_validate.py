"""Strictly validate custom resources against the openAPIV3Schema of their CRD.

usage: crd_validate.py --crd CRD.yaml [--crd CRD.yaml ...] [--constraint-match MATCH.yaml] FILE.yaml...

Every object schema that lists properties and neither allows additional properties nor
preserves unknown fields is closed (additionalProperties: false), which is what the API
server's pruning would silently do; here an unknown field is an error. Objects of other kinds
in the files are skipped. Exit 1 when any object fails, 2 on usage errors.

With --constraint-match (Gatekeeper's `match.gatekeeper.sh_matchcrd.yaml`), every Gatekeeper
ConstraintTemplate among the files also defines the schema of its Constraints the way Gatekeeper
generates their CRD (frameworks `crds.CreateSchema`): `constraints.gatekeeper.sh` `v1beta1` and
`v1alpha1`, `spec.match` from the match CRD's `embeddedMatch`, `enforcementAction`,
`scopedEnforcementActions` and, for a `v1` template (no legacy schema), `spec.parameters` from the
template's `openAPIV3Schema` as written.
"""
import copy
import sys

import jsonschema
import yaml


def close(schema):
    if isinstance(schema, dict):
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            close(value)
    elif isinstance(schema, list):
        for item in schema:
            close(item)
    return schema


def constraint_schema(template, match):
    """The openAPIV3Schema Gatekeeper generates for a template's Constraints."""
    if template["apiVersion"] != "templates.gatekeeper.sh/v1":
        raise ValueError("only v1 templates (strict parameters) are generated here")
    spec = {
        "match": copy.deepcopy(match),
        "enforcementAction": {"type": "string"},
        "scopedEnforcementActions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "action": {"type": "string"},
                    "enforcementPoints": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    },
                },
            },
        },
    }
    validation = template["spec"]["crd"]["spec"].get("validation") or {}
    if validation.get("openAPIV3Schema") is not None:
        spec["parameters"] = copy.deepcopy(validation["openAPIV3Schema"])
    schema = close({"type": "object", "properties": {"spec": {"type": "object", "properties": spec}}})
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 63}},
    }
    schema["properties"]["status"] = {}
    schema["properties"]["apiVersion"] = {"type": "string"}
    schema["properties"]["kind"] = {"type": "string"}
    return schema


def main(argv):
    crds, files, args, match = [], [], argv[1:], None
    while args:
        if args[0] == "--crd" and len(args) > 1:
            crds.append(args[1])
            args = args[2:]
        elif args[0] == "--constraint-match" and len(args) > 1:
            matchcrd = yaml.safe_load(open(args[1]))
            match = matchcrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["embeddedMatch"]
            args = args[2:]
        else:
            files.append(args[0])
            args = args[1:]
    if not crds or not files:
        print(__doc__, file=sys.stderr)
        return 2
    schemas = {}
    for crd in (doc for path in crds for doc in yaml.safe_load_all(open(path))):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = close(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            # Some CRDs (Istio's) list only spec and status at the root.
            schema["properties"].setdefault("apiVersion", {"type": "string"})
            schema["properties"].setdefault("kind", {"type": "string"})
            schemas[(f"{group}/{version['name']}", kind)] = schema
    if match is not None:
        for path in files:
            for document in yaml.safe_load_all(open(path)):
                if document and document.get("kind") == "ConstraintTemplate":
                    kind = document["spec"]["crd"]["spec"]["names"]["kind"]
                    schema = constraint_schema(document, match)
                    for version in ("v1beta1", "v1alpha1"):
                        schemas[(f"constraints.gatekeeper.sh/{version}", kind)] = schema
    failures = checked = 0
    for path in files:
        for document in yaml.safe_load_all(open(path)):
            if not document:
                continue
            key = (document.get("apiVersion"), document.get("kind"))
            if key not in schemas:
                continue
            checked += 1
            errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(document), key=str)
            for error in errors:
                failures += 1
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                print(f"ERROR {path}: {where}: {error.message}")
    print(f"checked {checked} custom resources, {failures} errors")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
