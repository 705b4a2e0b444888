from prebuild.cli import main

main()
