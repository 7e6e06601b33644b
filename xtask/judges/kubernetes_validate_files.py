"""Per-file verdicts of `kubernetes-validate --strict` for enclave-check's agreement test.

The CLI stops at the first file that is not YAML and prints per document, so this calls the
same library functions it uses (`resources_from_file`, `validate(strict=True)`) and records,
for every file, whether it passes: a file fails when a document breaks its schema or cannot be
validated at all; kinds without a schema (custom resources) are skipped, as the CLI warns and
passes them.

usage: python kubernetes_validate_files.py OUT.json ROOT FILE...
"""
import json
import os
import sys

from kubernetes_validate import utils

VERSION = "1.37.0"


def verdict(path):
    try:
        resources = utils.resources_from_file(path)
    except SystemExit as error:
        return {"valid": False, "errors": [str(error)]}
    errors = []
    for resource in resources:
        try:
            utils.validate(resource, VERSION, strict=True)
        except utils.ValidationError as error:
            errors.append("%s: %s" % (".".join(str(p) for p in error.path), error.message[:200]))
        except (utils.SchemaNotFoundError, utils.InvalidSchemaError):
            pass
        except Exception as error:  # what the CLI reports as "could not be validated"
            errors.append("could not be validated: %s" % error)
    return {"valid": not errors, "errors": errors}


def main():
    out, root, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    verdicts = {os.path.relpath(path, root): verdict(path) for path in files}
    with open(out, "w") as handle:
        json.dump(verdicts, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
