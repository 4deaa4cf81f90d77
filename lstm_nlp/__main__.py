from lstm_nlp.cli import main

main()
