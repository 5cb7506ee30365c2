from dlworkshop.cli import main

main()
