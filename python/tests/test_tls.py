"""hpsearch.connect over TLS with a token, against `hpsearch serve --tls-cert ... --auth-token-file ...`."""
import pytest

import hpsearch


def test_ask_tell_over_tls_with_a_token(tls_server):
    address, ca, token, _ = tls_server
    with hpsearch.connect(address, tls_ca=ca, auth_token_file=token) as client:
        study = client.create_study("secure", {"x": {"type": "float", "low": 0.0, "high": 1.0}}, n_trials=5)
        study.optimize(lambda trial: (trial.params["x"] - 0.3) ** 2, n_jobs=2)
        assert len(study.trials) == 5
        assert study.best_value == min(t.value for t in study.trials)


def test_without_the_token_the_coordinator_refuses(tls_server):
    address, ca, _, _ = tls_server
    with hpsearch.connect(address, tls_ca=ca) as client:
        with pytest.raises(hpsearch.HpsearchError) as refused:
            client.study_names()
        assert refused.value.code == "UNAUTHENTICATED"
