from edge_sed.cli import main

main()
