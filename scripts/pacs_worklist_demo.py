"""Fill a PACS worklist the real way and print the viewer command that shows it (docs/pacs_worklist.png).

Real radiographs from ../shared/data (the NIH chest DICOM, pediatric normal and pneumonia PNGs as DICOM with
synthetic patient names, a COVID-19 radiograph, and an abdomen scout the AI must refuse) are sent by C-STORE to a
`Listener` on loopback, which spools and pre-reads them; then a pacs.toml pointing at that spool is written.

    .venv/bin/python scripts/pacs_worklist_demo.py /tmp/pacs-demo
    .venv/bin/radassist view --pacs /tmp/pacs-demo/pacs.toml --screenshot docs/pacs_worklist.png <printed path>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the test helpers that make DICOM from the data sets' PNGs

from pacs_support import CHEST_DICOM, TEST_SCU_AET, chest_copies, free_port, png_as_dicom  # noqa: E402

from radassist.pacs.config import PacsConfig, Peer  # noqa: E402
from radassist.pacs.listener import Listener  # noqa: E402
from radassist.pacs.sender import store_to_peer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    data, out = args.data, args.out
    out.mkdir(parents=True, exist_ok=True)

    files = [chest_copies(data / CHEST_DICOM, out / "src", 1)[0], data / "dicom/nhsx_nccid_test_data/sample.dcm"]
    rows = [line.split(",") for line in (data / "pediatric_pneumonia" / "labels.csv").read_text().splitlines()[1:]]
    chosen = [r[0] for r in rows if r[1] == "NORMAL"][:3] + [r[0] for r in rows if r[1] == "PNEUMONIA"][:3]
    for index, png in enumerate(chosen):
        files.append(png_as_dicom(data / "pediatric_pneumonia" / png, out / "src" / f"peds{index}.dcm",
                                  patient_name=f"DEMO^PEDIATRIC{index + 1}", patient_id=f"DEMO-P{index + 1}",
                                  accession=f"A{1000 + index}", study_date=f"202601{10 + index}"))
    covid = (data / "covid_hannover" / "labels.csv").read_text().splitlines()[1].split(",")[0]
    files.append(png_as_dicom(data / "covid_hannover" / covid, out / "src" / "covid.dcm", patient_name="DEMO^ADULT",
                              patient_id="DEMO-A1", accession="A2000", study_date="20260120"))

    port = free_port()
    config = PacsConfig(port=port, spool=out / "spool")
    listener = Listener(config)
    listener.start()
    try:
        store_to_peer(Peer("self", config.ae_title, "127.0.0.1", port), files, TEST_SCU_AET)
        listener.prereader.wait_idle(600)
    finally:
        listener.stop()
    (out / "pacs.toml").write_text(f'[local]\nae_title = "RADASSIST"\nspool = "{(out / "spool").as_posix()}"\n')
    first = listener.worklist.entries()[0]
    print(f"{len(files)} images stored and pre-read; worklist {out / 'spool' / 'worklist.sqlite'}")
    print(first.spool_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
