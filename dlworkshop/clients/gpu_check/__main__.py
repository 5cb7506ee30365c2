import sys

from dlworkshop.clients.gpu_check.run import main

sys.exit(main())
