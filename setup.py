"Package build for soft_grounding: reads settings.ini (nbdev 2). No pkg_resources: it is gone from current setuptools."
from configparser import ConfigParser
import shlex
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = ('version description keywords author author_email license lib_name user '
            'min_python status audience language git_url').split()
missing = [o for o in expected if o not in cfg]
if missing: raise ValueError(f"settings.ini lacks {missing}")

licenses = {'apache2': 'Apache-2.0'}  # SPDX expressions; license classifiers are deprecated
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']

def split_reqs(key):
    "Requirement strings from a space-separated settings.ini entry (quotes allowed)"
    return shlex.split(cfg.get(key, ''))

requirements = split_reqs('requirements')
dev_requirements = split_reqs('dev_requirements')

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    license=licenses[cfg['license']],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'],
        'Natural Language :: ' + cfg['language'],
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['soft_grounding', 'soft_grounding.*']),
    include_package_data=True,
    package_data={'soft_grounding.assets': ['*/*', '*.json']},  # the shipped base models and their tuned values
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"],
    },
    author=cfg['author'],
    author_email=cfg['author_email'],
    keywords=cfg['keywords'],
)
