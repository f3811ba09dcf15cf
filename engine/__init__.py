"""The recommendation engine: pure functions over plain dataclasses of Decimals.

Nothing here imports Django or touches a database; views, the API, the admin and the
CDS Hooks service all call `recommend()` with data loaded by `protocols.selectors`.
"""
