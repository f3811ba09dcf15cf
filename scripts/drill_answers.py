"""The restore drill's two halves (run by scripts/restore_drill.sh, not on its own).

make  --url U --key-file K --count N       store N varied assessments through POST /api/v1/recommendations
dump  --url U --key-file K --database-url D --out F
      every stored assessment as the app serves it (GET /api/v1/assessments/{id} and its FHIR bundle),
      in id order, one line each: the id and the exact bytes of both answers
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import psycopg
import requests

TOXICITIES = ([{"type": "CRS", "grade": 3}], [{"type": "ICANS", "grade": 2}], [{"type": "carHLH", "grade": 4}])
INSTITUTIONS = (None, "cnh", "seattle", "chop", "nih", "musc", "stjude")


def make(args: argparse.Namespace, session: requests.Session) -> None:
    variants = itertools.product(TOXICITIES, INSTITUTIONS, (0, 1, 2), (True, False))
    for n, (toxicities, institution, tocilizumab, steroids) in zip(range(args.count), itertools.cycle(variants)):
        body = {
            "weight_kg": 5 + (n * 37) % 1400 / 10,
            "age_years": (n * 13) % 2000 / 100,
            "toxicities": toxicities,
            "prior_tocilizumab_doses": tocilizumab,
            "prior_steroids": steroids,
            "creatinine_clearance_ml_min": (n * 7) % 1500 / 10 if n % 3 else None,
        }
        if institution:
            body["institution"] = institution
        response = session.post(f"{args.url}/api/v1/recommendations", data=json.dumps(body), timeout=10)
        response.raise_for_status()


def dump(args: argparse.Namespace, session: requests.Session) -> None:
    with psycopg.connect(args.database_url) as connection:
        ids = [str(row[0]) for row in connection.execute("SELECT id FROM assessments_assessment ORDER BY id")]
    with args.out.open("wb") as out:
        for assessment_id in ids:
            answer = session.get(f"{args.url}/api/v1/assessments/{assessment_id}", timeout=10)
            bundle = session.get(f"{args.url}/api/v1/assessments/{assessment_id}/fhir", timeout=10)
            answer.raise_for_status()
            bundle.raise_for_status()
            out.write(assessment_id.encode() + b"\t" + answer.content + b"\t" + bundle.content + b"\n")
    print(f"{len(ids)} assessments served and written to {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["make", "dump"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    session = requests.Session()
    key = args.key_file.read_text().strip()
    session.headers.update({"Authorization": f"Token {key}", "Content-Type": "application/json"})
    (make if args.command == "make" else dump)(args, session)


if __name__ == "__main__":
    main()
