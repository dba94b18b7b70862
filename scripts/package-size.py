#!/usr/bin/env python3
"""The size of every function's deployment package, as Lambda counts it (CodeSize = the zip).

    scripts/package-size.py BUILD_DIR [--max-zipped BYTES] [--json FILE]

BUILD_DIR is `sam build`'s output (.aws-sam/build): one directory per function (its logical
id) holding what `sam deploy` zips and uploads. Each is zipped here the way `sam package` does
(deflate, every file under the directory) and its zipped and unzipped bytes printed; exits 1
when a package is over --max-zipped, naming it.
"""
import argparse
import io
import json
import os
import sys
import zipfile


def package(directory):
    buf = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for base, _dirs, files in os.walk(directory):
            for name in sorted(files):
                path = os.path.join(base, name)
                unzipped += os.path.getsize(path)
                z.write(path, os.path.relpath(path, directory))
    return len(buf.getvalue()), unzipped


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dir")
    ap.add_argument("--max-zipped", type=int, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    functions = sorted(
        d for d in os.listdir(a.build_dir)
        if os.path.isfile(os.path.join(a.build_dir, d, "bootstrap"))
    )
    if not functions:
        print(f"package-size: no function package (*/bootstrap) under {a.build_dir}")
        return 1
    rows, over = [], []
    for f in functions:
        zipped, unzipped = package(os.path.join(a.build_dir, f))
        rows.append({"function": f, "zipped_bytes": zipped, "unzipped_bytes": unzipped})
        flag = ""
        if a.max_zipped is not None and zipped > a.max_zipped:
            over.append(f)
            flag = f"   OVER {a.max_zipped}"
        print(f"  {f:<32} zipped {zipped:>10} B   unzipped {unzipped:>10} B{flag}")
    if a.json:
        with open(a.json, "w") as out:
            json.dump(rows, out, indent=2)
    if over:
        print(f"package-size: over {a.max_zipped} bytes zipped: {', '.join(over)}")
        return 1
    print(f"package-size: {len(rows)} packages" +
          (f", each at most {a.max_zipped} bytes zipped" if a.max_zipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
