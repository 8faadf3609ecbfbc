from lattts.cli import main

main()
