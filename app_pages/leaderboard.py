import streamlit as st

from ui import collection as pick, sidebar, trust_board as board

model, model_key, picture, image_key = sidebar.current()
st.title("Which map to trust")
st.caption("Every attribution method draws a map, and the maps disagree. Which one shows what the network really "
           "used? Score each method's maps over many pictures: remove the pixels a map ranks highest (deletion: "
           "the probability should fall fast), put them back into a blurred picture (insertion: it should rise "
           "fast), fill them from their neighbours (ROAD), or keep only what the map shows (average drop, "
           "increase in confidence). The baselines know nothing of the class: Random weighs Grad-CAM's layer by "
           "random numbers, Edges is the picture's edges with no network at all. A method that does not beat them "
           "tells you nothing.")

chosen = pick.pick_collection("board", default="samples")
if chosen is None:
    st.stop()
collection, collection_key = chosen
methods, metrics = board.pick(model_key)
pictures = st.number_input("Pictures (spread evenly over the collection)", 1, len(collection), min(8, len(collection)),
                           key=f"board-pictures-{collection_key}",
                           help="Taken in an order that keeps them spread: stopped early, the table is still fair")
if not methods or not metrics:
    st.info("Pick at least one method and one score.")
    st.stop()
earlier, earlier_key = board.earlier_scores()
scores = board.run(model, model_key, collection, collection_key, methods, metrics, int(pictures), earlier, earlier_key)
if scores is not None and len(scores):
    board.show(scores)
