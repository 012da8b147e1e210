"""Coverage: vocabulary the dev set seldom shows, one synthetic abstract each.

Written for the hand lexicon; for the learned model they are a generalisation check (the
model never trained on them), with its known misses marked.

All abstracts here are synthetic, written for these tests (not taken from any record).
Expected topics follow the project codebook, including its adjudication rules: CYP work
explaining kratom's own action is `mechanism` while CYP inhibition of other drugs is
`safety`; nociceptive "tail-withdrawal" is not drug withdrawal; product contamination is
`safety` only; spiked-sample analytics and plant genetics get no topic.
"""

from __future__ import annotations

import pytest

from kratomlit.classify import Classifier

# (id, why it is here, expected topics, title, abstract)
CASES = [
    (
        "m06",
        "CYP3A forming 7-OH-mitragynine is mechanism, not an interaction (codebook)",
        ["mechanism"],
        (
            "Hepatic CYP3A-mediated oxidation of mitragynine to 7-hydroxymitragynine "
            "contributes to its analgesic effects"
        ),
        "Mitragynine is a weak partial agonist at the mu opioid receptor, yet it is an "
        "effective analgesic in vivo. Incubations with human and mouse liver microsomes "
        "and recombinant enzymes showed that 7-hydroxymitragynine is formed predominantly "
        "by CYP3A4, with minor contributions from CYP2D6 and CYP2C19. In mice, "
        "ketoconazole pretreatment reduced brain 7-hydroxymitragynine and attenuated "
        "mitragynine antinociception, and the antinociceptive effect was absent in MOR "
        "knockout mice. Together, these results show that bioactivation to a more "
        "efficacious metabolite mediates a substantial part of the opioid-like effects of "
        "mitragynine.",
    ),
    (
        "m11",
        "tail-withdrawal / potency (ED50, pA2) is a pain assay, not drug withdrawal",
        ["mechanism"],
        (
            "Schild analysis of naloxone antagonism and potency of kratom alkaloids in the "
            "mouse tail-withdrawal assay"
        ),
        "We characterized the in vivo potency of kratom alkaloids. Subcutaneous "
        "mitragynine, 7-hydroxymitragynine and mitragynine pseudoindoxyl produced "
        "dose-related increases in tail-withdrawal latency in mice with ED50 values of "
        "106, 0.57 and 0.21 mg/kg. Naloxone shifted the dose-effect curves to the right "
        "in a parallel manner, with apparent pA2 values consistent with a mu "
        "receptor-mediated action for 7-hydroxymitragynine and pseudoindoxyl but not for "
        "mitragynine. Positive allosteric modulation was excluded in vitro.",
    ),
    (
        "w07",
        "naloxone-precipitated withdrawal; equi-antinociceptive doses only in passing",
        ["withdrawal"],
        (
            "Physical dependence after repeated mitragynine in mice: naloxone-precipitated "
            "withdrawal compared with morphine"
        ),
        "We examined whether chronic mitragynine produces physical dependence. Mice "
        "received escalating injections of mitragynine or morphine twice daily for 5 "
        "days, followed by naloxone (1 mg/kg s.c.). Naloxone precipitated jumping, paw "
        "tremor, diarrhea and body weight loss in morphine-treated mice, whereas "
        "mitragynine-treated mice showed only mild teeth chattering and ptosis. "
        "Spontaneous abstinence after abrupt cessation produced few somatic signs. These "
        "findings indicate that mitragynine induces less physical dependence than "
        "morphine at equi-antinociceptive doses.",
    ),
    (
        "w01",
        "neonatal opioid withdrawal after maternal use: withdrawal + neonatal exposure",
        ["safety", "withdrawal"],
        "Neonatal opioid withdrawal syndrome after maternal kratom use: a case report",
        "A male infant born at 38 weeks developed irritability, high-pitched cry, poor "
        "feeding, sneezing and tremors 36 hours after birth. The mother had used kratom "
        "powder daily throughout pregnancy to self-manage chronic back pain and had "
        "stopped prescribed oxycodone before conception. Finnegan scores rose to 14, and "
        "the infant required oral morphine, which was weaned over 9 days. Maternal and "
        "infant urine were positive for mitragynine. Clinicians should ask pregnant "
        "patients about kratom, as in utero exposure can produce an abstinence syndrome "
        "requiring pharmacologic treatment.",
    ),
    (
        "w02",
        "kratom use disorder (DSM-5) treated with buprenorphine, grams per day",
        ["dosing", "safety", "withdrawal"],
        "Buprenorphine-naloxone induction for kratom use disorder: a case series of five patients",
        "We describe five adults who met DSM-5 criteria for moderate or severe kratom use "
        "disorder and presented to an outpatient addiction clinic. Patients reported "
        "consuming 15 to 60 grams of kratom powder daily, with failed attempts to cut "
        "down because of rhinorrhea, myalgia, restlessness and insomnia. All were "
        "inducted onto sublingual buprenorphine-naloxone using a low-dose microinduction, "
        "reaching 8 to 16 mg daily. Four remained in treatment at 6 months with urine "
        "negative for mitragynine. Buprenorphine appears to be an effective maintenance "
        "option for people with kratom use disorder.",
    ),
    (
        "s01",
        "cholestatic DILI with RUCAM causality",
        ["safety"],
        (
            "Cholestatic drug-induced liver injury attributed to kratom: assessment by RUCAM "
            "in eight patients"
        ),
        "We reviewed eight patients referred to a hepatology service with jaundice and "
        "pruritus after regular kratom consumption. Onset occurred 1-8 weeks after "
        "starting use. Peak total bilirubin ranged from 5.2 to 28 mg/dL and alkaline "
        "phosphatase was elevated with a mixed or cholestatic R ratio. Causality by the "
        "Roussel Uclaf Causality Assessment Method was probable in six and possible in "
        "two. Liver biopsy in three showed canalicular cholestasis with minimal "
        "inflammation. All recovered after stopping kratom. Kratom should be considered "
        "in the differential diagnosis of idiopathic cholestatic hepatitis.",
    ),
    (
        "s06",
        "FAERS / CAERS spontaneous reports",
        ["safety"],
        (
            "Kratom in the FDA Adverse Event Reporting System and the CFSAN Adverse Event "
            "Reporting System, 2004-2022"
        ),
        "We extracted reports naming kratom or mitragynine from FAERS and CAERS. Among "
        "1,032 reports, 41% described serious outcomes and 19% a death; the most "
        "frequently coded MedDRA preferred terms were drug dependence, vomiting, seizure "
        "and hepatic failure. Disproportionality analysis yielded elevated reporting odds "
        "ratios for hepatobiliary disorders. These spontaneous reports support continued "
        "surveillance of kratom products.",
    ),
    (
        "s07",
        "Salmonella outbreak: product words are not dosing",
        ["safety"],
        "Multistate outbreak of Salmonella infections linked to kratom products",
        "In 2018 public health officials investigated a multistate outbreak of Salmonella "
        "infections. Whole-genome sequencing linked 199 illnesses in 41 states to several "
        "serotypes recovered from kratom powders and capsules collected from ill people "
        "and retail stores; 50 patients were hospitalized. Product testing led to recalls "
        "by multiple firms. Because kratom products are not processed to eliminate "
        "pathogens, they can carry enteric bacteria.",
    ),
    (
        "s08",
        "heavy metals in products: contamination is safety, not dosing",
        ["safety"],
        "Lead, nickel and other elemental impurities in commercial kratom products",
        "We measured lead, nickel, arsenic, cadmium, mercury and chromium by inductively "
        "coupled plasma mass spectrometry in 26 kratom products purchased from smoke "
        "shops and online retailers. Lead was present in all products at concentrations "
        "up to 2.4 µg/g and nickel up to 37 µg/g. Several products exceeded permitted "
        "daily exposures for elemental impurities set by the USP. Chronic consumption of "
        "kratom could expose consumers to toxic levels of heavy metals.",
    ),
    (
        "s11",
        "CYP inhibition of other drugs: safety, not mechanism (codebook)",
        ["safety"],
        (
            "Time-dependent inhibition of CYP3A4 and reversible inhibition of CYP2D6 by kratom "
            "alkaloids"
        ),
        "We evaluated mitragynine, 7-hydroxymitragynine, speciogynine and paynantheine as "
        "inhibitors of major cytochrome P450 enzymes in pooled human liver microsomes. "
        "Mitragynine was a potent competitive inhibitor of CYP2D6 (Ki 1.2 µM) and a "
        "time-dependent inhibitor of CYP3A4 (KI 4.1 µM, kinact 0.07 min-1). Static "
        "mechanistic models predicted clinically relevant increases in exposure to CYP3A "
        "and CYP2D6 substrates. Kratom users taking prescription drugs could be at risk "
        "of pharmacokinetic interactions.",
    ),
    (
        "s12",
        "clinical DDI with human PK: safety + dosing",
        ["dosing", "safety"],
        (
            "Effect of kratom tea on midazolam and dextromethorphan pharmacokinetics in "
            "healthy volunteers"
        ),
        "We conducted an open-label crossover study in 12 healthy adults. Participants "
        "received oral midazolam (2.5 mg) and dextromethorphan (30 mg) alone and after a "
        "single kratom tea containing 13 mg mitragynine. Kratom increased midazolam AUC "
        "by 50% and Cmax by 40%, whereas dextromethorphan exposure was unchanged. "
        "Mitragynine Tmax was 1.3 h. The findings show a clinically relevant interaction "
        "via intestinal CYP3A inhibition.",
    ),
    (
        "s16",
        "stroke and myocardial infarction",
        ["safety"],
        "Acute ischemic stroke and myocardial infarction temporally associated with kratom use",
        "A 31-year-old man with no vascular risk factors presented with right-sided "
        "weakness and aphasia after consuming a large amount of kratom extract. MRI "
        "showed an acute left middle cerebral artery infarct. Two weeks later he had a "
        "non-ST-elevation myocardial infarction with normal coronary arteries. Vasospasm "
        "associated with kratom use is proposed. Clinicians should consider kratom in "
        "young patients with unexplained ischemic events.",
    ),
    (
        "s17",
        "pancreatitis",
        ["safety"],
        "Kratom use and risk of acute pancreatitis: a case report",
        "A 26-year-old woman developed severe epigastric pain radiating to the back. "
        "Serum lipase was 1,420 U/L and CT showed peripancreatic inflammation. "
        "Gallstones, hypertriglyceridemia and alcohol were excluded. She reported daily "
        "kratom use for 18 months and symptoms resolved after discontinuation, with no "
        "recurrence at one year. To our knowledge this is an unusual presentation of "
        "kratom-associated pancreatitis.",
    ),
    (
        "s20",
        "endocrine harm: adrenal insufficiency, hyperpigmentation",
        ["safety"],
        "Adrenal insufficiency and skin hyperpigmentation in a chronic kratom user",
        "A 52-year-old man presented with fatigue, hypotension, hyponatremia and "
        "darkening of the face and hands. Morning cortisol was 1.8 µg/dL with an "
        "inadequate response to cosyntropin. He had used kratom for 6 years. After "
        "cessation and hydrocortisone replacement, adrenal function recovered over 4 "
        "months and the pigmentation faded. Opioid-induced suppression of the "
        "hypothalamic-pituitary-adrenal axis by kratom is a plausible explanation.",
    ),
    (
        "x08",
        "infant exposure via breast milk with measured concentrations",
        ["dosing", "safety"],
        "Mitragynine exposure in breast milk: a case report of a lactating mother",
        "A 30-year-old breastfeeding woman who used kratom powder 2 g three times daily "
        "provided milk and plasma samples over 24 hours. Mitragynine concentrations in "
        "milk were about one-third of those in plasma, corresponding to an estimated "
        "relative infant dose of 1.9%. Her 3-month-old infant had no sedation or feeding "
        "problems. Infant exposure through breast milk appears low at this level of "
        "maternal use.",
    ),
    (
        "d02",
        "animal PK: oral availability, mean residence time",
        ["dosing"],
        "Oral bioavailability and tissue distribution of 7-hydroxymitragynine in rats",
        "7-Hydroxymitragynine was administered to male Sprague-Dawley rats intravenously "
        "(0.5 mg/kg) and by oral gavage (5 mg/kg). Plasma and tissue samples were "
        "analysed by UPLC-MS/MS. After oral dosing the maximum plasma level was 28 ng/mL "
        "at 0.5 h, absolute oral availability was 2.7%, and the compound was widely "
        "distributed, with brain-to-plasma ratios of 1.2. The mean residence time was 3.1 "
        "h. These data explain the low oral potency of 7-hydroxymitragynine relative to "
        "injection.",
    ),
    (
        "d04",
        "amounts, frequency and forms (toss and wash, shots)",
        ["dosing"],
        (
            "How much kratom do people use? Amounts, frequency and product forms reported in a "
            "national survey"
        ),
        "We surveyed 4,520 US adults who currently use kratom. Respondents most often "
        "used kratom one to three times a day; the median amount was 3 g per occasion and "
        "9 g/day. Powder taken by the toss and wash method or mixed into drinks was most "
        "common (68%), followed by capsules (24%), liquid shots and extract products "
        "(8%). Higher daily amounts were reported by those using extracts. These "
        "quantity-frequency data can inform guidance on typical kratom use.",
    ),
    (
        "n02",
        "analytical method on spiked samples only",
        [],
        (
            "Determination of mitragynine in spiked human urine by dispersive liquid-liquid "
            "microextraction and GC-MS"
        ),
        "A simple sample preparation method was developed for mitragynine in urine. Blank "
        "urine samples were spiked at 10-500 ng/mL, extracted with chloroform in "
        "acetonitrile and analysed by GC-MS in selected ion monitoring mode. The "
        "calibration was linear (r2 > 0.998), the limit of detection was 2 ng/mL and "
        "recoveries were 91-104% with relative standard deviations below 8%. The method "
        "is suitable for forensic screening laboratories.",
    ),
    (
        "n03",
        "plastid genome / phylogeny",
        [],
        (
            "Complete chloroplast genome of Mitragyna speciosa and phylogenetic placement "
            "within Rubiaceae"
        ),
        "We sequenced and assembled the chloroplast genome of Mitragyna speciosa using "
        "Illumina short reads. The plastome is 155,480 bp with a typical quadripartite "
        "structure and encodes 86 protein-coding genes. Phylogenetic analysis placed M. "
        "speciosa as sister to Uncaria within the tribe Naucleeae. Simple sequence "
        "repeats identified here can serve as markers for species authentication.",
    ),
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


# The learned model's known errors here (the hand lexicon had been edited to pass them; the
# learned model has seen no such abstract). strict: fixing one must be noticed.
KNOWN_MISSES = {
    "m06": "CYP names push `safety` though the enzyme work explains kratom's own action",
    "w07": "antinociception measured in passing also gives `mechanism`",
}


@pytest.mark.parametrize(
    ("case_id", "why", "expected", "title", "abstract"),
    [pytest.param(*c, marks=pytest.mark.xfail(reason=KNOWN_MISSES[c[0]], strict=True))
     if c[0] in KNOWN_MISSES else c for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_lexicon_coverage(
    classifier: Classifier, case_id: str, why: str, expected: list[str], title: str, abstract: str
) -> None:
    result = classifier.classify(title, abstract)
    assert sorted(result.topics) == sorted(expected), (
        f"{case_id} ({why}): scores {result.scores}, evidence "
        f"{ {t: [e.phrase for e in ev] for t, ev in result.evidence.items()} }"
    )
