from dartle.cli import main

main()
