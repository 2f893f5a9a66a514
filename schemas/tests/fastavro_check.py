#!/usr/bin/env python3
"""Cross-implementation check of Dakoku's Avro single-object encoding with fastavro.

Run by tests/cross_impl.rs as:  fastavro_check.py <schemas/avro dir> <work dir>

1. For each <work>/rust/<Record>.<n>.bin written by our Rust codec, with the expected record in
   <Record>.<n>.json: check the C3 01 marker, check the fingerprint equals fastavro's own
   CRC-64-AVRO fingerprint of avro/<Record>.avsc, decode the datum with fastavro and compare
   field by field (and that no bytes are left over).
2. Re-encode each expected record with fastavro (its own header and schemaless_writer datum)
   into <work>/python/<Record>.<n>.bin, for the Rust side to decode.

Exit status: 0 all good, 1 mismatch, 3 fastavro missing.
"""

import datetime
import io
import json
import pathlib
import sys
import uuid

try:
    import fastavro
    from fastavro.schema import fingerprint, to_parsing_canonical_form
except ImportError as e:  # pragma: no cover
    print(
        f"fastavro is not importable ({e}): scripts/test installs it; "
        "or: pip install -r schemas/tests/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(3)

MARKER = b"\xc3\x01"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_DATE = datetime.date(1970, 1, 1)
MILLI = datetime.timedelta(milliseconds=1)
# Recomputed independently of the Rust constant: see PunchId in src/ids.rs.
PUNCH_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dakoku:punch-id")


def non_null(union):
    branches = [b for b in union if b != "null"]
    assert len(branches) == 1, union
    return branches[0]


def to_plain(value, ty):
    """fastavro's decoded value -> the JSON shape the Rust side wrote."""
    if isinstance(ty, list):
        return None if value is None else to_plain(value, non_null(ty))
    if isinstance(ty, dict):
        logical = ty.get("logicalType")
        if logical == "timestamp-millis":
            return (value - EPOCH) // MILLI
        if logical == "date":
            return (value - EPOCH_DATE).days
        if logical == "uuid":
            return str(value)
        if ty["type"] == "array":
            return [to_plain(v, ty["items"]) for v in value]
        if ty["type"] == "enum":
            return value
        return to_plain(value, ty["type"])
    if ty == "bytes":
        return list(value)
    return value


def to_native(value, ty):
    """The JSON shape -> the Python types fastavro takes for each logical type."""
    if isinstance(ty, list):
        return None if value is None else to_native(value, non_null(ty))
    if isinstance(ty, dict):
        logical = ty.get("logicalType")
        if logical == "timestamp-millis":
            return EPOCH + value * MILLI
        if logical == "date":
            return EPOCH_DATE + datetime.timedelta(days=value)
        if logical == "uuid":
            return uuid.UUID(value)
        if ty["type"] == "array":
            return [to_native(v, ty["items"]) for v in value]
        return to_native(value, ty["type"]) if ty["type"] != "enum" else value
    if ty == "bytes":
        return bytes(value)
    return value


def main(avro_dir, work_dir):
    avro_dir, work_dir = pathlib.Path(avro_dir), pathlib.Path(work_dir)
    (work_dir / "python").mkdir(exist_ok=True)
    schemas = {}
    failures = []
    checked = 0
    for expected_path in sorted((work_dir / "rust").glob("*.json")):
        record_name = expected_path.name.split(".")[0]
        if record_name not in schemas:
            raw = json.loads((avro_dir / f"{record_name}.avsc").read_text())
            parsed = fastavro.parse_schema(raw)
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
            schemas[record_name] = (raw, parsed, fp)
        raw, parsed, fp = schemas[record_name]
        expected = json.loads(expected_path.read_text())
        data = expected_path.with_suffix(".bin").read_bytes()
        where = expected_path.stem

        if data[:2] != MARKER:
            failures.append(f"{where}: marker {data[:2].hex()} is not c301")
        if data[2:10] != fp:
            failures.append(f"{where}: fingerprint {data[2:10].hex()} != fastavro's {fp.hex()}")
        body = io.BytesIO(data[10:])
        decoded = fastavro.schemaless_reader(body, parsed)
        if body.tell() != len(data) - 10:
            failures.append(f"{where}: {len(data) - 10 - body.tell()} bytes left over")
        for field in raw["fields"]:
            name = field["name"]
            got = to_plain(decoded[name], field["type"])
            if got != expected[name]:
                failures.append(f"{where}.{name}: fastavro read {got!r}, Rust wrote {expected[name]!r}")
        if "punch_id" in expected:
            want = uuid.uuid5(
                PUNCH_NAMESPACE, f"{expected['tenant_id']}/{expected['device_id']}/{expected['seq']}"
            )
            if str(want) != expected["punch_id"]:
                failures.append(f"{where}: punch_id {expected['punch_id']} is not uuid5 {want}")
        checked += 1

        native = {f["name"]: to_native(expected[f["name"]], f["type"]) for f in raw["fields"]}
        out = io.BytesIO()
        out.write(MARKER + fp)
        fastavro.schemaless_writer(out, parsed, native, strict=True)
        (work_dir / "python" / f"{where}.bin").write_bytes(out.getvalue())

    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"fastavro {fastavro.__version__}: checked {checked} values, {len(failures)} mismatches")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
