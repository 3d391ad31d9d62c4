import sys

from posebridge.cli import main

sys.exit(main())
