#!/usr/bin/env python3
"""Assembles a directory of real-world Kubernetes manifests for the posture benchmark.

Usage: assemble-realworld.py OUTDIR GITDIR...

Each GITDIR is a bare clone (or a work tree's .git) of a public project that ships plain manifests
(see BENCHMARKS.md for the ones used). Every YAML/JSON file at HEAD that holds `apiVersion:` and
`kind:` and no Helm/Go template markers (`{{`) is copied, keeping its path under OUTDIR/<project>/.
The manifests are not committed to this repository.
"""
import os
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    total = 0
    for gitdir in sys.argv[2:]:
        name = os.path.basename(os.path.dirname(os.path.abspath(gitdir))) if gitdir.rstrip("/").endswith("repo") else os.path.basename(gitdir.rstrip("/"))
        files = subprocess.run(["git", "--git-dir", gitdir, "ls-tree", "-r", "--name-only", "HEAD"],
                               check=True, capture_output=True, text=True).stdout.splitlines()
        for path in files:
            if not path.endswith((".yaml", ".yml", ".json")):
                continue
            blob = subprocess.run(["git", "--git-dir", gitdir, "show", f"HEAD:{path}"], capture_output=True)
            if blob.returncode != 0 or len(blob.stdout) > 4 * 1024 * 1024:
                continue
            text = blob.stdout.decode("utf-8", "replace")
            if "{{" in text or "apiVersion" not in text or "kind" not in text:
                continue
            dest = os.path.join(out, name, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(blob.stdout)
            total += 1
    print(f"{total} files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
