"""Strictly validate custom resources against the openAPIV3Schema of their CRD.

usage: crd_validate.py --crd CRD.yaml [--crd CRD.yaml ...] FILE.yaml...

Every object schema that lists properties and neither allows additional properties nor
preserves unknown fields is closed (additionalProperties: false), which is what the API
server's pruning would silently do; here an unknown field is an error. Objects of other kinds
in the files are skipped. Exit 1 when any object fails, 2 on usage errors.
"""
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


def main(argv):
    crds, files, args = [], [], argv[1:]
    while args:
        if args[0] == "--crd" and len(args) > 1:
            crds.append(args[1])
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
