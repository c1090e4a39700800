import sys

from pipeline_checks.cli import main

sys.exit(main())
