from lstm_nlp.cli.app import main

main()
