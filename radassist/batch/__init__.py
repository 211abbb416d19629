"""Pre-reading an archive: `radassist batch SRC --out DIR [--engine local|ray]`.

One job a module:
- `sources`: SRC (folder tree, DICOMDIR or list file) -> the images to read, each confined to SRC's folder;
- `worker`: the code that runs in a worker process or Ray actor (models loaded once, one read per image);
- `work_queue`: which images are still to read and how often each was lost with a worker;
- `local_engine` / `ray_engine`: hand images to worker processes / Ray actors and survive a lost worker;
- `results`: collision-free result names, atomic JSON writes, which results are complete (`--resume`);
- `summary`: summary.csv written row by row, studies.csv per study;
- `driver`: the run itself (the CLI front-end is radassist/cli/batch.py).
Ray is imported only by `ray_engine`, and only when that engine runs.
"""
