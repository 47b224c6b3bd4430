"""Face identity galleries (``who``): people enrolled as face embeddings, matched in memory.

``store`` keeps them in the database (every change audited, a generation counter moved),
``matcher`` holds them per process and searches them, ``who`` turns a graph's faces and their
embeddings into named faces, ``enrol`` turns photos into enrolments. Nothing here imports the
core: enrolment is handed the function that asks a question.
"""
