"""The reviewable text form of a rule set, for `dossier policy export|import`.

Standard CSV (RFC 4180), one Casbin line per row, with departments written by name rather
than id so a file moves between databases and reads well in a review. Quoting keeps a brace
pattern such as `customer.{phone,email}` one field: Casbin's own CSV splits it on the comma.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from policy.admin import PolicyInputError

HEADER = "# ptype,subject_or_role,role_or_department,department_or_resource,action,scope,effect"
# consent requirements are `c,<resource.field>,<READ|EXPORT>,<purpose>` (policy.consent)


def dump(lines: Iterable[Sequence[str]], department_names: Mapping[int, str]) -> str:
    out = io.StringIO()
    out.write(HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for line in lines:
        row = [value for value in line if value != ""]
        if row[0] == "p" and row[2].isdigit():
            row[2] = department_names.get(int(row[2]), row[2])
        elif row[0] == "g" and len(row) > 3 and row[3].isdigit():
            row[3] = department_names.get(int(row[3]), row[3])
        writer.writerow(row)
    return out.getvalue()


def load(text: str, department_ids: Mapping[str, int]) -> list[tuple[str, ...]]:
    """Parse a file made by `dump`; departments by name (or id, or `*`)."""
    lines: list[tuple[str, ...]] = []
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    for number, row in enumerate(rows, start=1):
        row = [value.strip() for value in row]
        if row and row[0] == "c":  # a consent requirement (`policy.consent`)
            if len(row) != 4:
                raise PolicyInputError(f"line {number}", "c lines have 4 fields")
            lines.append(tuple(row) + ("",) * 3)
            continue
        if not row or row[0] not in ("p", "g"):
            raise PolicyInputError(f"line {number}", "must start with p, g or c")
        position = 2 if row[0] == "p" else 3
        if len(row) != (7 if row[0] == "p" else 4):
            raise PolicyInputError(f"line {number}", "p lines have 7 fields, g lines 4")
        department = row[position]
        if department != "*" and not department.isdigit():
            if department not in department_ids:
                raise PolicyInputError(f"line {number}", f"unknown department {department!r}")
            row[position] = str(department_ids[department])
        lines.append(tuple(row) + ("",) * (7 - len(row)))
    return lines
