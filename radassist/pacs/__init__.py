"""DICOM networking: receive studies (C-STORE), pre-read them into a worklist, send results back to PACS.

Nothing here listens or connects unless `radassist listen` or the viewer's PACS source is started with a
configuration (`radassist.pacs.config`): the no-network promise holds otherwise.

| module | job |
|---|---|
| `config` | the one configuration file (TOML): this AE, peers, DICOMweb URLs, results destination |
| `spool` | received instances written atomically to disk; recovery after a crash |
| `worklist` | SQLite worklist: study, AI status, priority, reading status, results status |
| `listener` | the C-STORE / C-ECHO SCP and its background pre-reader |
| `results` | the clinical SR (TID 1500) and the labelled secondary capture for one read |
| `sender` | results to a peer (C-STORE) or DICOMweb (STOW-RS), retried with backoff |
| `query` | C-FIND / C-GET / C-MOVE and QIDO-RS / WADO-RS against a configured peer |
"""
