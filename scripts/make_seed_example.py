"""Write examples/history/: a roster and September 2023's audits that reproduce the figures of
the council's report to the Practice Quality Board for that month (180 audits of Standard 1).

The people are invented; the counts are chosen so that every percentage of the report's
Standard 1 table comes out exactly as published (criterion 1.1 was left blank on one form,
which is why its percentages have 179 behind them). Run: `.venv/bin/python
scripts/make_seed_example.py`; the files are committed, so this is only needed to change them.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "examples" / "history"
TEAMS = [
    "Mendip Adult Social Care Team",
    "Sedgemoor Adult Social Care Team",
    "Taunton Adult Social Care Team",
    "South Somerset Adult Social Care Team",
    "West Somerset Adult Social Care Team",
    "Somerset Occupational Therapy Team",
    "Hospital Discharge Team",
    "Learning Disabilities Team",
]
# Below, Meets, Exceeds, N/A counts reproducing the published percentages.
COUNTS = {
    "1.1": (8, 121, 45, 5),  # of 179: 4.5, 67.6, 25.1, 2.8
    "1.2": (10, 121, 47, 2),  # 5.6, 67.2, 26.1, 1.1
    "1.3": (8, 143, 26, 3),  # 4.4, 79.4, 14.4, 1.7
    "1.4": (16, 122, 33, 9),  # 8.9, 67.8, 18.3, 5
    "1.5": (13, 121, 40, 6),  # 7.2, 67.2, 22.2, 3.3
}
LABELS = ("Below", "Meets", "Exceeds", "N/A")
QUOTES = [
    "She was very knowledgeable and reassured me tremendously and put me at ease.",
    "She always explained what she was doing, was always on time, and put mum at ease.",
    "Everything was put in place in a timely way to support me.",
    "Over more than a year you have replied to our concerns very quickly.",
    "The family found the worker excellent and felt informed of the process.",
]
MANAGERS = {"DIR": 2, "SM": 4, "SVM": 12, "AP": 8, "PDAP": 4}
QUOTA = {"DIR": 1, "SM": 2, "SVM": 2, "AP": 2, "PDAP": 6}
PRACTITIONERS = 106


def main() -> None:
    rng = random.Random("seed-001-september-2023")  # noqa: S311 - a fixed example, not a secret
    OUT.mkdir(parents=True, exist_ok=True)
    people: list[dict[str, str]] = []
    number = 0
    for role, count in MANAGERS.items():
        for _ in range(count):
            number += 1
            people.append(
                {
                    "email": f"staff{number:03d}@somerset.example",
                    "name": f"Manager {number:03d}",
                    "role": role,
                    "team": TEAMS[number % len(TEAMS)],
                }
            )
    for _ in range(PRACTITIONERS):
        number += 1
        role = rng.choice(["SW", "SW", "SW", "OT", "ASCP", "OTA"])
        team = TEAMS[number % len(TEAMS)]
        supervisor = next(p for p in people if p["role"] == "SVM" and p["team"] == team)
        people.append(
            {
                "email": f"staff{number:03d}@somerset.example",
                "name": f"Practitioner {number:03d}",
                "role": role,
                "team": team,
                "supervisor_email": supervisor["email"],
            }
        )
    with (OUT / "staff.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle,
            ["email", "name", "role", "team", "supervisor_email", "active"],
            lineterminator="\n",
        )
        writer.writeheader()
        for person in people:
            writer.writerow({**person, "active": "yes"})

    practitioners = [p for p in people if p["role"] not in MANAGERS]
    audits: list[dict[str, str]] = []
    reference = 1_900_000
    for manager in (p for p in people if p["role"] in MANAGERS):
        for _ in range(QUOTA[manager["role"]]):
            worker = rng.choice([p for p in practitioners if p["team"] != manager["team"]])
            reference += 13
            audits.append(
                {
                    "kind": "sampled",
                    "auditor_email": manager["email"],
                    "audited_worker_email": worker["email"],
                    "team": worker["team"],
                    "case_reference": str(reference),
                }
            )
    for worker in practitioners:
        reference += 13
        audits.append(
            {
                "kind": "self",
                "auditor_email": worker["email"],
                "audited_worker_email": worker["email"],
                "team": worker["team"],
                "case_reference": str(reference),
            }
        )
    assert len(audits) == 180, len(audits)

    for criterion, counts in COUNTS.items():
        ratings = [label for label, count in zip(LABELS, counts, strict=True) for _ in range(count)]
        ratings += [""] * (180 - len(ratings))  # a form that left the criterion blank
        rng.shuffle(ratings)
        for audit, rating in zip(audits, ratings, strict=True):
            audit[criterion] = rating
    for audit, quote in zip(rng.sample(audits, len(QUOTES)), QUOTES, strict=True):
        audit["feedback"] = quote
        audit["feedback_for_report"] = "yes"

    columns = [
        "month",
        "standard",
        "kind",
        "auditor_email",
        "audited_worker_email",
        "team",
        "case_reference",
        "feedback",
        "feedback_for_report",
        *COUNTS,
    ]
    with (OUT / "audits-2023-09.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        for audit in audits:
            writer.writerow({"month": "2023-09", "standard": "1", **audit})
    print(
        f"Wrote {OUT / 'staff.csv'} ({len(people)} people) and "
        f"{OUT / 'audits-2023-09.csv'} ({len(audits)} audits)"
    )


if __name__ == "__main__":
    main()
