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
    from snnc.runtime.export import EXPORT_FORMATS, write_artifact_file

    parser.add_argument("--format", default="nir", choices=list(EXPORT_FORMATS),
                        help="nir (any target), netx (loihi: lava-dl .net file), speck-config (speck: JSON)")
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
