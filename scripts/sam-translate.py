"""Print template.yaml as CloudFormation receives it after the SAM transform (JSON).

Used by `make test` so the tag policy also checks what SAM generates (function roles, schedules,
event-invoke configs), and by `orderbroker update-plan`. Runs offline: local code URIs are
replaced by a placeholder S3 URI, as `sam deploy` would after uploading the build, and no
managed-policy lookups are made. With several paths it prints a JSON array, one translated
template per path in order. With `--stdin-json` it reads a JSON array of already parsed templates
(YAML short forms in their long form) and prints the array translated: `orderbroker update-plan`
parses the YAML itself, so both sides cost one interpreter start and no Python YAML parse.
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator only needs managed-policy ARNs for policy names it cannot resolve."""

    def load(self):
        return {}

    def get(self, *_args, **_kwargs):
        return None


def translate_doc(template: dict) -> dict:
    """One parsed SAM template as CloudFormation receives it."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-2")
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if not str(props.get("CodeUri", "")).startswith("s3://"):
                props["CodeUri"] = "s3://sam-build-placeholder/function.zip"
    return transform(template, {}, NoManagedPolicies())


def translate_file(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return translate_doc(yaml_parse(f.read()))


def main() -> int:
    paths = sys.argv[1:] or ["template.yaml"]
    if paths == ["--stdin-json"]:
        json.dump([translate_doc(t) for t in json.load(sys.stdin)], sys.stdout)
    elif len(paths) == 1:
        json.dump(translate_file(paths[0]), sys.stdout, indent=1)
    else:
        json.dump([translate_file(p) for p in paths], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
