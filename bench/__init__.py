"""Proof and performance tooling (issue 6): `python -m bench` compares the submission handler with a
bare boto3 baseline (`bench.baseline`), cold and warm, against one loopback moto server, and sizes the
deployment zip. Kept free of imports: the cold-start child (`bench.cold_child`) imports this package
before it starts its clock, so nothing here may weigh on either side of the comparison."""
