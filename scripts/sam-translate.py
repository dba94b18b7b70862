"""Print template.yaml as CloudFormation receives it after the SAM transform (JSON).

Used by `make test` so the tag policy also checks what SAM generates (function roles, schedules,
event-invoke configs). Runs offline: local code URIs are replaced by a placeholder S3 URI, as
`sam deploy` would after uploading the build, and no managed-policy lookups are made.
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


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-2")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if not str(props.get("CodeUri", "")).startswith("s3://"):
                props["CodeUri"] = "s3://sam-build-placeholder/function.zip"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
