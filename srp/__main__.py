from srp.cli import main

main()
