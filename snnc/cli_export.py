"""``snn-export ARTIFACT -o out.nir``: write a compiled artifact's deployed program as a NIR file."""
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
                                     description="Export an snnc artifact (cpu, loihi, speck) back to NIR "
                                                 "with the deployed integer parameters.")
    parser.add_argument("artifact", help="compiled artifact file")
    parser.add_argument("-o", "--output", required=True, help="NIR file to write (.nir)")
    args = parser.parse_args(argv)
    from snnc.runtime.export import write_artifact_nir

    try:
        path = write_artifact_nir(args.artifact, args.output)
    except SnncError as e:
        sys.stderr.write(f"snn-export: error: {e.format()}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    sys.stderr.write(f"snn-export: wrote {path}\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
