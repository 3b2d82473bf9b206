# ruff: noqa: E501 - one problem per line reads better than wrapped strings
"""Corpus wave 7: street-level problems in the registers residents really write in.

Run ``python classifiers/data/registers.py`` to (re)write ``corpus/<department>-wave7.jsonl``.

Real reports to a council are rarely sentences about a named service. They are short and lower
case ("bins chute 4th floor stinks"), misspelt, location first, with no verb; or long and
rambling with the request buried in the middle; they use local words (estate, close, chute,
verge, alleyway, bay, ginnel, cut-through) and describe what is wrong ("water pouring out the
grate", "black stuff on the bedroom wall") instead of naming the service (gully clearance,
damp and mould). This wave teaches that, for the six departments most of those reports go to.

Every problem below was written for this project (no resident's report was copied; streets
are invented, no names, addresses or number plates of real people). Each department's list
covers its whole range of services, and the boundaries people confuse are written on purpose,
labelled by the taxonomy's rules: damp, mould, leaks and broken heating in a council home are
housing repairs, while pests, smells, smoke and noise are environmental health; litter,
dumped rubbish, graffiti and dead animals are waste, while the road, pavement, drains and
street lights are highways, and trees, grass, verges, play areas and park furniture are parks;
cars on pavements, across drives, in bays and abandoned are parking, while the road markings
and kerbs themselves are highways.

Each problem is written twice (a noun phrase and a sentence) and rendered in six registers,
each row carrying its ``register`` and its ``source`` (the problem it renders): ``terse`` (location first, no verb, lower case), ``text``
(SMS shorthand and typos), ``describe`` (a plain sentence about the problem), ``local``
(location first with local words), ``ramble`` (a long message with the request buried among
other departments' words) and ``note`` (a contact-centre note). Training holds out whole
sources for dev (see docs/classifier.md): here a problem in all its registers, so what dev
scores is a problem the model never saw in any form.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).parent / "corpus"

# noun phrase | sentence. The department is the one a council would send it to.
PROBLEMS: dict[str, list[str]] = {
    "waste": [
        "bins not emptied since last week | nobody has emptied our bins since last week",
        "blue bin missed again | they missed the blue bin again, third time now",
        "food caddy left behind | the food waste caddy was left behind full",
        "bin chute blocked on the 4th floor | the chute on our floor is blocked and bags are piling up",
        "bin store overflowing | the bin store for the block is overflowing onto the path",
        "mattress dumped in the alleyway | someone has dumped a mattress and a fridge in the alley",
        "builders rubble on the verge | a pile of rubble and plasterboard has been tipped on the verge",
        "black bags split open | black bags have been left out and foxes have ripped them open",
        "sofa left outside for weeks | an old sofa has been left on the corner for weeks",
        "graffiti on the bus shelter | someone has sprayed tags all over the bus shelter",
        "offensive graffiti on the garages | there is racist writing sprayed on the garage doors",
        "dog mess all along the path | the path is covered in dog mess, you cant walk down it",
        "litter all over the grass by the shops | the grass by the shops is covered in crisp packets and cans",
        "broken glass all over the pavement | there is smashed bottle glass all over the pavement",
        "dead fox in the road | there is a dead fox lying in the road outside",
        "dead pigeon on the doorstep | a dead pigeon has been on the step for days",
        "needles in the ginnel | there are used needles in the ginnel behind the houses",
        "street not swept for months | our road hasnt been swept in months, leaves and rubbish everywhere",
        "litter bin overflowing at the bus stop | the little bin at the bus stop is full and spilling out",
        "new wheelie bin needed | our wheelie bin was taken by the lorry and never came back",
        "lid snapped off the bin | the lid has snapped off our bin and the crows get in",
        "recycling box never delivered | ordered a recycling box a month ago, still nothing",
        "garden waste not collected | paid for the brown bin but it hasnt been picked up",
        "collect an old fridge freezer | i need an old fridge freezer and a washing machine taken away",
        "bin crew left rubbish in the road | the bin men dropped half of it in the road and drove off",
        "bins left blocking the pavement | the crew left all the bins across the pavement, my mum cant get her scooter past",
        "communal bins not emptied on the estate | the big communal bins on the estate havent been emptied",
        "fly tipping behind the garages again | more rubbish has been tipped behind the garages",
        "trolleys and bags dumped in the brook | shopping trolleys and bags of rubbish have been dumped in the brook",
        "chewing gum and fag ends outside the station | the entrance to the station is filthy with fag ends",
        "clinical waste bags not collected | my sharps box and clinical waste bags werent collected",
        "assisted collection needed | im disabled and cant pull the bin out to the kerb anymore",
        "when is bin day over christmas | what day are the bins collected over the bank holiday",
        "tyres dumped in the lay-by | about ten old tyres have been dumped in the lay by",
        "asbestos sheets dumped | someone has dumped what looks like asbestos sheets in the back lane",
        "van tipping rubbish at night | a white van keeps coming at night and tipping rubbish by the bottle bank",
        "bottle bank full | the bottle bank is full and people are leaving glass next to it",
        "vomit and mess outside the takeaway | the pavement outside the chippy is covered in mess every weekend",
        "sticker graffiti on the signs | all the signs on the high street are covered in stickers and tags",
        "leaves piled up on the footpath not swept | the footpath is ankle deep in wet leaves, nobody sweeps it",
    ],
    "highways": [
        "massive pothole outside number 12 | there is a massive pothole outside number 12, a car lost a wheel trim",
        "pothole by the bus stop | the hole in the road by the bus stop is getting deeper",
        "street light out | the lamp outside our house has been out for two weeks",
        "lamp post flickering all night | the street lamp keeps flickering on and off all night",
        "light on all day | the street light is on all day and night",
        "lamp post leaning after a crash | a car hit the lamp post and its leaning over the path",
        "water pouring out the grate | water is pouring up out of the grate in the road when it rains",
        "road flooded every time it rains | the dip in the road floods every time it rains, cars are stuck",
        "drain blocked with leaves | the drain at the bottom of the hill is blocked and the road turns into a lake",
        "paving slab rocking | a paving slab is rocking and my dad tripped on it",
        "pavement sunk outside the school | the pavement has sunk outside the school gates",
        "tree roots lifting the pavement | roots have lifted the pavement so bad buggies cant get by",
        "kerb broken by the crossing | the kerb is broken at the crossing and there are sharp bits",
        "ice on the hill not gritted | the hill wasnt gritted and three cars slid this morning",
        "grit bin empty | the grit bin at the top of the close is empty",
        "road markings worn away | the give way lines at the junction have worn away",
        "zebra crossing beacon not working | one of the lights on the zebra crossing isnt working",
        "traffic lights stuck on red | the temporary traffic lights have been stuck on red for ages",
        "road works left a mess | the road works finished but they left cones and a trench",
        "cones left for weeks | road cones have been left on the verge for weeks with no work",
        "manhole cover rattling | the manhole cover in the road clunks every time a car goes over",
        "missing drain cover | a drain cover is missing in the footpath, someone will break a leg",
        "sign knocked down | the road sign at the junction has been knocked flat",
        "mud all over the road from the site | lorries from the building site leave mud all over the road",
        "oil spill on the roundabout | there is a big diesel spill on the roundabout, bikes are sliding",
        "need a dropped kerb | i want a dropped kerb so i can park on my drive",
        "speeding through the estate want speed bumps | cars race through the estate, can we have speed bumps",
        "bollard knocked over | one of the bollards by the shops has been knocked over",
        "crack across the road | there is a big crack right across the road that is getting wider",
        "cycle lane full of glass | the cycle lane is covered in gravel and glass",
        "footpath crumbling | the tarmac on the footpath is crumbling into holes",
        "hedge growing over the footpath from a garden | a hedge from a house is growing so far over the path you have to walk in the road",
        "bridge railing loose | the railing on the footbridge is loose and wobbles",
        "road surface breaking up after the winter | the whole road surface is breaking up since the frost",
        "gully smells and is full of silt | the gully outside is full of silt and never drains",
        "subway lights not working | the lights in the underpass are all out and its pitch black",
        "temporary lights causing queues | the temporary lights on the main road are causing huge queues, is it right",
        "flooding under the railway bridge | the road under the railway bridge is flooded again",
        "junction too dangerous needs a mirror | you cant see round the bend at the junction, can a mirror go up",
        "pavement blocked by scaffolding without a licence | scaffolding blocks the whole pavement, is there a licence for it",
    ],
    "parking": [
        "car on the pavement every day | a car parks fully on the pavement every day and we cant get the pram past",
        "van across my drive | a van keeps parking across my drive and i cant get out for work",
        "dropped kerb blocked | someone parks over my dropped kerb every night",
        "car not moved in months flat tyres | a car with flat tyres has not moved in three months",
        "abandoned car burnt out | there is a burnt out car in the lay by",
        "no tax car dumped on the estate | a car with no tax has been left on the estate for ages",
        "parking on double yellows by the school | parents park on the yellow lines at school time every day",
        "people parking in the disabled bay | people without badges keep using the disabled bay",
        "need a disabled bay outside my house | can i get a disabled bay painted outside my house",
        "parking ticket wrong | i got a ticket but i had paid on the app",
        "fine when my badge was on show | i got a parking fine even though my blue badge was on the dashboard",
        "ticket machine eating coins | the pay machine in the car park took my money and gave no ticket",
        "permit not arrived | my residents permit hasnt come and i keep getting tickets",
        "visitor permits for my carer | how do i get visitor permits for my carer",
        "car park barrier stuck | the barrier at the multi storey is stuck and there is a queue",
        "wardens never come to our street | the wardens never come, cars park on the corners all day",
        "lorry parked overnight in the bay | an artic lorry parks in the bays overnight every night",
        "caravan left in the bay for months | a caravan has been left in the parking bay outside for months",
        "cars blocking the bin lorry | cars parked both sides mean the bin lorry cant get down",
        "commuters parking all day in our road | commuters fill our road every day and residents cant park",
        "taxi parking on the zigzags | taxis wait on the zig zags by the crossing",
        "appeal a penalty charge | i want to appeal the penalty charge, the signs were covered",
        "bailiffs for a parking fine i never got | i never got the parking fine and now bailiffs have written",
        "car park lights out and people hanging about | the car park is dark and people hang about, its not safe",
        "can i pay for parking by phone | can i pay for the car park by phone, there is no signal",
        "season ticket for the car park | how much is a season ticket for the station car park",
        "motorbike parked on the footpath | a motorbike is chained on the footpath and blocks it",
        "car for sale parked on the verge for weeks | someone is selling cars parked on the verge",
        "ev charging bay blocked | petrol cars keep parking in the electric charging bay",
        "clamped in a council car park | my car was clamped in the council car park",
        "car hanging out of a bay | a car parks across two bays every day",
        "someone living in a car in the car park | someone seems to be living in a car in the car park for weeks",
        "parking on the grass on the estate | people park all over the grass on the estate and the bins cant get in",
        "permit zone hours wrong on the sign | the sign says permit holders 8 to 6 but you fine people at 7",
        "scrap car in the back lane | an old scrap car has been dumped in the back lane with no plates",
        "vans parked at the junction you cant see | vans park right at the junction and you cant see to pull out",
    ],
    "parks": [
        "tree branch hanging off | a big branch is hanging off the tree in the park after the storm",
        "tree fell across the path in the park | a tree has come down across the path in the park",
        "tree too close to my house | the council tree outside is touching my roof and blocking all the light",
        "roots from the council tree cracking my wall | the roots from the big tree on the green are cracking my garden wall",
        "swings broken at the play area | the swings at the play park are broken and one is hanging by a chain",
        "broken glass in the playground | there is broken glass all over the kids play area",
        "grass not cut for weeks on the green | the grass on the green hasnt been cut for weeks and its knee high",
        "verge grass overgrown cant see at the junction | the grass on the verge is so long you cant see to pull out",
        "hedges in the park overgrown | the hedges along the park path are overgrown and block the path",
        "allotment waiting list | how long is the waiting list for an allotment",
        "allotment neighbour plot full of rubbish | the plot next to mine on the allotments is full of junk and rats",
        "park gate not locked at night | the park gates never get locked at night now",
        "football pitch booking | can we book the football pitch on sundays for our team",
        "goalposts broken on the field | the goalposts on the playing field are snapped",
        "bench broken in the park | the bench by the pond is broken",
        "pond full of weed and dead fish | the pond in the park is covered in green weed and dead fish",
        "cemetery grass not cut | the grass in the cemetery is so long you cant find the graves",
        "headstone area overgrown | my mums grave is overgrown with brambles",
        "motorbikes tearing up the field | motorbikes ride across the playing field and tear it up",
        "japanese knotweed on the green | there is japanese knotweed spreading on the green",
        "ivy and brambles over the path by the river | the riverside path is closed in by brambles",
        "outdoor gym equipment broken | the outdoor gym in the park is broken",
        "park toilets locked | the toilets in the park are always locked",
        "paddling pool not filled | when does the paddling pool open",
        "want to plant a tree in memory | can we plant a memorial tree in the park",
        "roundabout in the play area stuck | the roundabout in the play area is stuck and has a sharp edge",
        "trees on the estate need cutting back | the trees on the estate are overgrown and block the street lights",
        "leaves from the park trees | the trees in the park drop leaves all over our gardens",
        "dead tree on the green | the big tree on the green looks dead and might fall",
        "skate park damaged | the ramps at the skate park are cracked",
        "bowling green closed | is the bowling green open this summer",
        "wildflower verge mown | the wildflower verge was mown flat, why",
        "hedge on the council land needs trimming | the council hedge at the end of the close is massive",
        "park path flooded and muddy | the path through the park is a mud bath",
        "picnic benches burnt | someone burnt the picnic benches by the lake",
        "play area fence broken dogs getting in | the fence round the play area is broken and dogs get in",
    ],
    "environmental_health": [
        "rats in the back gardens | there are rats running along the back gardens",
        "mice in the kitchen | we have mice in the kitchen, can someone come and treat it",
        "cockroaches coming from next door | cockroaches are coming through from the flat next door",
        "wasps nest in the eaves | there is a wasps nest in the roof and the kids got stung",
        "bed bugs in the flat | we have bed bugs and the children are covered in bites",
        "rats around the bin store | rats are living under the bin store on the estate",
        "pigeons nesting under the solar panels | pigeons are nesting under the panels and the mess is everywhere",
        "loud music every night | next door plays loud music till 4 every night",
        "dog barking all day | the dog two doors down barks all day while they are at work",
        "noise from the pub garden | the pub garden is noisy till midnight every weekend",
        "building site starting at 6am | the building site starts drilling at 6 in the morning",
        "burglar alarm going off for hours | an alarm has been going off for hours at the empty house",
        "bonfire smoke every weekend | my neighbour burns rubbish every weekend and the smoke comes in",
        "black smoke from the factory | thick black smoke is coming out of the factory chimney",
        "smell of sewage in the street | there is a smell of sewage in the street, its horrible",
        "takeaway extractor stinks | the takeaway extractor fan pumps cooking smell into our bedroom",
        "food poisoning from a takeaway | we all got food poisoning after eating at a takeaway",
        "dirty kitchen at the cafe | i saw mouse droppings in the kitchen at the cafe",
        "hair in my food and dirty staff | there was hair in my food and the staff were not washing hands",
        "selling food from home | can i sell cakes from home, do i need to register",
        "out of date food on sale | the corner shop is selling out of date meat",
        "dust from the building site | dust from the site next door covers our cars and windows",
        "water from my private borehole | i want my private water supply tested",
        "pollution in the stream | the stream has turned white and smells of chemicals",
        "fumes from the garage spraying cars | the garage sprays cars in the open and the fumes make us ill",
        "neighbour hoarding and the smell | my neighbours flat smells awful and flies are coming out",
        "foxes screaming and digging | foxes are screaming every night and digging under the shed",
        "dog kennels smell | the kennels behind us smell of dog mess in the heat",
        "noisy deliveries at night | the supermarket has lorries unloading at 3am",
        "karaoke from the flat above | the flat above has parties with karaoke in the week",
        "flies everywhere from the farm | swarms of flies since the farm spread muck",
        "chimney smoke from the wood burner next door | next doors wood burner fills our garden with smoke",
        "squirrels in the loft | squirrels have got into the loft",
        "fleas in the flat from the last tenant | the flat is full of fleas",
        "gull attacking people by the chippy | gulls swoop on people by the chippy, someone feeding them",
        "air quality by the school | the air by the school is thick with exhaust fumes at pick up",
        "tattoo shop hygiene | the tattoo place reused needles i think",
        "mould on the food in the shop fridge | there is mould on the sandwiches in the shop fridge",
    ],
    "housing": [
        "black mould on the bedroom walls | there is black mould all over the bedroom walls in our council flat",
        "damp in the babys room | the babys room is damp and the wallpaper is peeling off",
        "condensation running down the windows | water runs down the windows every morning and the sills are rotten",
        "leak from the flat above | water is coming through the ceiling from the flat above",
        "boiler broken no heating | the boiler has broken and we have no heating or hot water",
        "radiators cold | the radiators are stone cold and its freezing",
        "front door wont lock | the front door to the flat wont lock",
        "window wont shut | the bedroom window wont close properly and the wind comes in",
        "toilet leaking through the floor | the toilet leaks and its coming through the kitchen ceiling",
        "roof leaking | the roof leaks when it rains and the ceiling is stained",
        "lift broken in the block | the lift in our block has been broken for a week and im on the 9th floor",
        "communal door entry broken | the door entry on the block is broken so anyone can get in",
        "stairwell lights out in the block | the lights on the stairs in our block are out",
        "repair never done | i reported the repair months ago and nobody has come",
        "overcrowded flat need to move | five of us are in a one bed flat, we need to move",
        "swap my council house | i want to swap my council house with someone in another town",
        "housing register band | what band am i on the housing register",
        "being evicted next week | my landlord is evicting me next week and i have nowhere to go",
        "sleeping in my car | i have been sleeping in my car since i split up with my partner",
        "sofa surfing with a baby | me and my baby are sofa surfing, we need somewhere",
        "rent arrears letter | i got a letter about rent arrears on my council flat",
        "tenancy in my name after mum died | mum died and i lived with her, can the tenancy go to me",
        "neighbour in the council flat causing trouble | the council tenant upstairs is dealing drugs and threatening people",
        "adaptations for wheelchair | i need the bathroom adapted for my wheelchair",
        "electrics sparking | the sockets in the kitchen spark when you plug in",
        "kitchen cupboards falling off | the kitchen units are falling off the wall",
        "fence between council houses fallen down | the fence between us and next door fell down, we are both council",
        "dampness in the walls after the leak was fixed | the walls are still wet and smell musty after the leak",
        "mould came back after it was painted | they painted over the mould and its back",
        "no hot water in the tower block | nobody in the tower block has hot water",
        "new tenant flat not clean | we moved into the council flat and its filthy and damaged",
        "downsizing to a smaller flat | we want to move to a smaller council flat now the kids left",
        "shared ownership question | how do i buy more shares in my shared ownership flat",
        "garage rent council | i want to rent one of the council garages",
        "damp patch by the chimney breast | there is a big damp patch round the chimney breast",
        "private landlord ignoring the damp | my private landlord ignores the damp and the kids are ill",
        "landlord wont fix the boiler private rented | my landlord wont fix the boiler and its been three weeks",
    ],
}

PLACES = ["Elm Close", "Mill Lane", "Orchard Way", "Station Road", "Church Street", "Beech Avenue",
          "the Oakfield estate", "Larch Court", "Meadow Rise", "Victoria Terrace", "the Brookside estate",
          "Hawthorn Drive", "Kingsway", "the precinct", "Fern Grove", "Park Road", "Holly Bank",
          "the Greenhill estate", "Chapel Row", "Willow Crescent"]
LOCAL = ["the alleyway behind {p}", "the ginnel off {p}", "the verge on {p}", "the bay outside no {n} {p}",
         "the back lane behind {p}", "the cut through by the co-op on {p}", "block {n} on {p}",
         "the corner of {p}", "top of {p}", "the green at {p}", "the garages on {p}",
         "outside the shops on {p}", "{p} by the school", "the car park off {p}", "the end of {p}"]
GREETINGS = ["Hi there,", "Hello,", "Good morning,", "Dear Sir or Madam,", "To whoever reads this,", "Hiya,"]
SIGNOFFS = ["Thanks", "Many thanks", "Cheers", "Regards", "Thank you for your time", "Kind regards"]
# words of other departments that surround the real request in a long message
ASIDES = [
    "I have lived here 30 years and paid my council tax every year without fail.",
    "My son says I should use the app but I don't get on with it.",
    "I already rang about my bins last month and was on hold for ages.",
    "I'm not one to complain, and the library staff are lovely by the way.",
    "I have been meaning to write since before Christmas but with my hip operation I haven't had a chance.",
    "I know you are all busy and short staffed.",
    "We had the elections last week and there were posters everywhere, anyway.",
    "I'm a carer for my husband so I don't get out much.",
    "The bus was late again today which didn't help my mood.",
    "I tried to report it online but the form kept crashing.",
]
TEXTISMS = {"you": "u", "your": "ur", "please": "pls", "because": "coz", "tonight": "2nite", "for": "4",
            "to": "2", "are": "r", "outside": "outside", "people": "ppl", "tomorrow": "tmrw", "thanks": "thx",
            "really": "rly", "about": "abt", "weeks": "wks", "before": "b4"}
TYPOS = {"outside": "outsde", "there": "ther", "again": "agian", "weeks": "weaks", "broken": "borken",
         "council": "councel", "rubbish": "rubish", "pavement": "pavment", "neighbour": "nieghbour",
         "the": "teh", "which": "wich", "street": "steet", "garden": "gardn", "nobody": "no body",
         "months": "monthes", "people": "poeple", "collected": "colected", "everywhere": "everywere"}
NOTE_OPENINGS = ["Caller reports", "Resident called re", "Cust rang:", "Telephone: resident says",
                 "Walk-in at reception:", "Caller advised"]


def _lower_clean(text: str) -> str:
    return re.sub(r"[^\w\s']", "", text.lower())


def render(problem: str, register: str, rng: random.Random) -> str:
    phrase, sentence = (part.strip() for part in problem.split("|"))
    place = rng.choice(PLACES)
    spot = rng.choice(LOCAL).format(p=place, n=rng.randint(2, 40))
    if register == "terse":
        return f"{spot} {phrase}".lower()
    if register == "text":
        words = _lower_clean(sentence).split()
        out = []
        for word in words:
            if word in TYPOS and rng.random() < 0.6:
                word = TYPOS[word]
            elif word in TEXTISMS and rng.random() < 0.7:
                word = TEXTISMS[word]
            out.append(word)
        tail = rng.choice(["", " pls", " asap", " again!!", " sort it", " thx", " its been ages"])
        return " ".join(out) + tail
    if register == "describe":
        first = sentence[0].upper() + sentence[1:]
        return f"{first} on {place}. " + rng.choice(["Can someone look at it?", "Who do I tell?",
                                                        "What can be done?", "", "Please sort it out."]).strip()
    if register == "local":
        return f"{spot[0].upper() + spot[1:]} - {sentence}"
    if register == "ramble":
        asides = rng.sample(ASIDES, 3)
        return (f"{rng.choice(GREETINGS)}\n\n{asides[0]} {asides[1]} Anyway the reason I am writing is "
                f"that {sentence} on {place}, and it has been like it for a while now. {asides[2]} "
                f"I would be grateful if somebody could let me know what is happening.\n\n"
                f"{rng.choice(SIGNOFFS)}")
    if register == "note":
        return f"{rng.choice(NOTE_OPENINGS)} {phrase} at {spot}. Advised will be passed on."
    raise ValueError(register)


REGISTERS = ("terse", "text", "describe", "local", "ramble", "note")


def main() -> None:
    rng = random.Random(7)  # noqa: S311 - a seeded corpus, not a secret
    for department, problems in PROBLEMS.items():
        rows = []
        for number, problem in enumerate(problems, 1):
            for register in REGISTERS:
                channel = {"text": "sms", "note": "phone", "ramble": "email"}.get(register, "webform")
                rows.append({"text": render(problem, register, rng), "department": department, "channel": channel,
                             "source": f"wave7-{department}-{number}", "register": register})
        (OUT / f"{department}-wave7.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
        print(f"{department}: {len(rows)}")


if __name__ == "__main__":
    main()
