import sys

from pipeline_checks.cli.main import main

sys.exit(main())
