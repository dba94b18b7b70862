"""Vendor what `orderbroker update-plan` needs from the CloudFormation resource provider schemas.

For every resource type of the translated templates named on the command line (SAM files are
translated first, as `make test` does), it copies `createOnlyProperties` and
`conditionalCreateOnlyProperties` from the us-east-2 provider schemas that cfn-lint bundles (the
registry schemas CloudFormation publishes per region), with the schemas' date and cfn-lint's
version, into src/update/schemas.json. A type with no registry schema (`Custom::*`) is listed
with `null`. Re-run it when cfn-lint is upgraded or the template gains a resource type:

    .venv/tools/bin/python scripts/vendor-schemas.py template.yaml tests/fixtures/template-c9a0b03.yaml

A test fails when the translated template has a type the vendored file lacks.
"""

import json
import os
import sys
from importlib import metadata
from pathlib import Path

import cfnlint
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).parent))
translate = __import__("sam-translate")


def types_of(path: str) -> set:
    text = Path(path).read_text(encoding="utf-8")
    doc = json.loads(text) if path.endswith(".json") else yaml_parse(text)
    if "Transform" in doc:
        doc = translate.translate_doc(doc)
    return {r["Type"] for r in doc.get("Resources", {}).values()}


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-2")
    paths = sys.argv[1:] or ["template.yaml"]
    types = set()
    for p in paths:
        types |= types_of(p)
    root = Path(cfnlint.__file__).parent / "data" / "schemas"
    index = json.loads((root / "providers" / "us-east-2.json").read_text())
    date = json.loads((root / "version.json").read_text())["schema_date"]
    out = {
        "source": "CloudFormation resource provider schemas for us-east-2 as bundled by "
        f"cfn-lint {metadata.version('cfn-lint')} (scripts/vendor-schemas.py)",
        "schema_date": date,
        "types": {},
    }
    for t in sorted(types):
        if t not in index:
            out["types"][t] = None
            continue
        schema = json.loads((root / "resources" / f"{index[t]}.json").read_text())
        out["types"][t] = {
            "createOnlyProperties": schema.get("createOnlyProperties", []),
            "conditionalCreateOnlyProperties": schema.get("conditionalCreateOnlyProperties", []),
        }
    dest = Path(__file__).parent.parent / "src" / "update" / "schemas.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{dest}: {len(out['types'])} types, schemas of {date}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
