"""Reads of protocol data, in four modules (docs/architecture/layers.md), each importing only those above it
in this list:

- `catalog`: the published catalog shaped as engine data, the hot path of every recommendation;
- `reads`: test patients, governance facts (who wrote, checked, when due), default comparisons;
- `history`: editors, field-level history, snapshots and diffs, previews, the amounts a change makes;
- `governance`: the worklist and the printable change record, built from the others.
"""
