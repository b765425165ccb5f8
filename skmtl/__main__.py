import sys

from skmtl.cli import main

sys.exit(main())
