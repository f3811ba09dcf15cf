from tests.cds_hooks.conftest import ec_signing_key, ehr, rsa_signing_key  # noqa: F401  (the EHR test fixtures)
