import sys

from mrczbench.cli import main

sys.exit(main())
