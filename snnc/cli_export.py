"""``snn-export ARTIFACT -o FILE [--format nir|netx|speck-config]``: write a compiled artifact's deployed program.

``nir`` (default): NIR with the deployed integer parameters, any target. ``netx``: a Loihi artifact's
lava-dl netx ``.net`` file. ``speck-config``: a Speck artifact's chip configuration (JSON).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from snnc.errors import EXIT_OK, SnncError

log = logging.getLogger(__name__)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the exporter; return the process exit status (0 on success)."""
    parser = argparse.ArgumentParser(prog="snn-export",
                                     description="Export an snnc artifact: back to NIR with the deployed integer "
                                                 "parameters, or as the chip file a user takes to the chip.")
    parser.add_argument("artifact", help="compiled artifact file")
    parser.add_argument("-o", "--output", required=True, help="file to write (.nir, .net, .json)")
    from snnc.runtime.export import export_formats, write_artifact_file
    from snnc.targets.base import get_target, target_names

    chip_files = [f"{fmt} ({name}: {desc})" for name in target_names()
                  for fmt, desc in get_target(name).chip_formats.items()]
    parser.add_argument("--format", default="nir", choices=export_formats(),
                        help="; ".join(["nir (the deployed program as NIR)"] + chip_files))
    args = parser.parse_args(argv)

    try:
        path = write_artifact_file(args.artifact, args.output, args.format)
    except SnncError as e:
        sys.stderr.write(f"snn-export: error: {e.format()}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    sys.stderr.write(f"snn-export: wrote {path}\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
