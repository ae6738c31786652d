import sys

from onebox.cli import main

sys.exit(main())
