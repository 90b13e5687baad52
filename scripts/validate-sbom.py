"""Validates an SBOM with independent tools: CycloneDX JSON against the official CycloneDX 1.6 schema
bundled in cyclonedx-python-lib, SPDX 2.3 JSON with the SPDX project's own parser and validator
(spdx-tools). Usage: validate-sbom.py cyclonedx|spdx FILE. Exit 0 when valid, 1 with the errors."""
import sys


def cyclonedx(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    with open(path, encoding="utf-8") as f:
        text = f.read()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        # The error's text embeds the whole schema; the message and the path are what matter.
        data = getattr(error, "data", None)
        print("CycloneDX 1.6 schema error:", getattr(data, "message", None) or str(error)[:2000])
        print("at:", "/".join(map(str, getattr(data, "absolute_path", []))))
        return 1
    print("valid CycloneDX 1.6")
    return 0


def spdx(path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(path)
    messages = validate_full_spdx_document(document, "SPDX-2.3")
    for m in messages[:20]:
        print("SPDX 2.3 error:", m.validation_message, m.context)
    if messages:
        return 1
    print(f"valid SPDX 2.3 ({len(document.packages)} packages)")
    return 0


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    sys.exit({"cyclonedx": cyclonedx, "spdx": spdx}[kind](path))
