from phashdb.cli import main

main()
