import sys

from dlworkshop.gpu_check.run import main

sys.exit(main())
