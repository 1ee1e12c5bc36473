"""Deterministic simulation of the producer against a simulated Kafka cluster (issue 12).

``python -m tests.sim --seed N --trace`` replays one run; ``--seeds N`` runs many. See
README.md "Deterministic simulation" and ``tests/sim/FINDINGS.md``.
"""
