"""Findings: the chest X-ray knowledge graph (knowledge.py), the draft report written from a read
(report.py) and the report NLP that turns a radiologist's final text back into labels (nlp.py).

Vocabulary, templates and trigger phrases are data in resources/knowledge/ and resources/templates/.
"""
