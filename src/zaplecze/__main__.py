from zaplecze.interfaces.cli import main

main()
